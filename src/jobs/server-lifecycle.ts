/**
 * Single-user server lifecycle: the API asks for a start or stop, a job does it through the backend.
 * The database row is the source of truth; each start bumps `generation`, so a stale or duplicated
 * job sees it lost and does nothing. Workload names are deterministic, so a retried start adopts the
 * process or pod it created before instead of making a second one.
 */
import { performance } from 'node:perf_hooks';
import type { Backend, WorkloadSpec, WorkloadState } from '../backends';
import { PermanentBackendError, TransientBackendError, userLabelValue } from '../backends';
import type { Config, Profile } from '../config';
import type { Db, ServerRow } from '../db';
import {
  addServerEvent,
  beginServerStart,
  claimServerStart,
  findServer,
  findServerByWorkload,
  getServer,
  listActiveServers,
  revokeServerTokens,
  transitionServer,
} from '../db';
import type { Logger } from '../logging';
import type { Metrics } from '../metrics';
import type { ProfileCatalog } from '../profiles';
import { serverWorkloadName } from '../profiles';
import { ServerNotifier } from './server-notifier';
import { answersHttp, beforeDeadline, sleep, StartDeadlineError } from './server-readiness';
import type { JobInfo, JobQueue } from './types';
import { UnrecoverableJobError } from './types';

export const SERVER_START_JOB = 'server.start';
export const SERVER_STOP_JOB = 'server.stop';
const START_ATTEMPTS = 3;
/** What a server prints when its port was taken (Python's OSError, jupyter_server's own message, Node). */
const PORT_TAKEN = /Address already in use|port \d+ is already in use|EADDRINUSE/i;
const OUTPUT_LINES = 20;

export interface StartJobData {
  serverId: number;
  generation: number;
  env: Record<string, string>;
  args: string[];
  startTimeoutSeconds: number;
  /** ms since epoch when the API received the request (for the overhead metric). */
  receivedAt: number;
}

interface StopJobData {
  serverId: number;
  generation: number;
  graceSeconds: number;
}

export interface ServerLifecycleDeps {
  db: Db;
  queue: JobQueue;
  backend: Backend;
  config: Config;
  catalog: ProfileCatalog;
  notifier: ServerNotifier;
  metrics: Metrics;
  logger: Logger;
}

export interface StartRequest {
  username: string;
  serverName: string;
  profile: Profile;
  userOptions: Record<string, unknown>;
  env: Record<string, string>;
  args: string[];
  startTimeoutSeconds?: number;
  receivedAt: number;
}

/** Variables spawngate owns; a hub-provided value for them is replaced. */
const OWNED_ENV = ['JUPYTER_GATEWAY_URL', 'JUPYTER_GATEWAY_AUTH_TOKEN', 'KERNEL_USERNAME', 'JUPYTERHUB_SERVICE_URL'];

export function createServerLifecycle(deps: ServerLifecycleDeps) {
  const { db, queue, backend, config, notifier, metrics, logger } = deps;
  const log = logger.child({ component: 'server-lifecycle' });

  async function event(row: Pick<ServerRow, 'id' | 'generation'>, progress: number, message: string, extra: { failed?: boolean; ready?: boolean } = {}): Promise<void> {
    await addServerEvent(db, row.id, row.generation, { progress, message, ...extra });
    notifier.notify(row.id);
  }

  async function fail(row: ServerRow, message: string, fields: { exitCode?: number | null; lastOutput?: string[] } = {}): Promise<void> {
    const updated = await transitionServer(db, row.id, row.generation, ['pending', 'running'], 'failed', {
      message,
      exitCode: fields.exitCode ?? null,
      lastOutput: fields.lastOutput ?? null,
      url: null,
    });
    await revokeServerTokens(db, row.id);
    if (updated) {
      await event(row, 100, message, { failed: true });
      metrics.spawns.inc({ outcome: 'failed' });
      metrics.spawnDuration.observe({ outcome: 'failed' }, (Date.now() - row.requested_at.getTime()) / 1000);
      log.warn('server start failed', { user: row.username, server: row.server_name, reason: message });
    }
    notifier.notify(row.id);
  }

  async function outputOf(name: string): Promise<string[]> {
    try {
      return backend.logs ? await backend.logs(name, OUTPUT_LINES) : [];
    } catch {
      return [];
    }
  }

  function buildSpec(row: ServerRow, profile: Profile, data: StartJobData, gatewayToken: string): WorkloadSpec {
    const prefix = data.env.JUPYTERHUB_SERVICE_PREFIX ?? `/user/${encodeURIComponent(row.username)}/`;
    const local = backend.capabilities.hostProcesses;
    const baseCommand = profile.command ?? config.env.SPAWNGATE_SERVER_COMMAND.split(/\s+/).filter(Boolean);
    const command = [...baseCommand, ...data.args];
    if (local && config.env.SPAWNGATE_ALLOW_ROOT && !command.includes('--allow-root')) command.push('--allow-root');
    const env: Record<string, string> = {};
    if (local) {
      // A local server runs with this service's PATH so `jupyterhub-singleuser` resolves; the hub's own
      // PATH/PYTHONPATH/CONDA_* are never forwarded (they describe the hub's machine, not this one).
      if (process.env.PATH) env.PATH = process.env.PATH;
      if (process.env.HOME) env.HOME = process.env.HOME;
      if (process.env.LANG) env.LANG = process.env.LANG;
    }
    for (const [k, v] of Object.entries(data.env)) if (!OWNED_ENV.includes(k)) env[k] = v;
    Object.assign(env, profile.env);
    const bindHost = local ? '127.0.0.1' : '0.0.0.0';
    env.JUPYTERHUB_SERVICE_URL = `http://${bindHost}:{port}${prefix}`;
    env.JUPYTER_GATEWAY_URL = config.publicUrl;
    env.JUPYTER_GATEWAY_AUTH_TOKEN = gatewayToken;
    env.KERNEL_USERNAME = row.username;
    const r = profile.resources;
    return {
      name: row.workload_name,
      kind: 'server',
      labels: {
        'app.kubernetes.io/name': 'spawngate',
        'app.kubernetes.io/component': 'singleuser-server',
        'spawngate/user': userLabelValue(row.username),
        'spawngate/server-id': String(row.id),
      },
      command,
      env,
      image: profile.image,
      resources: {
        cpuRequest: r.cpu_request,
        cpuLimit: r.cpu_limit,
        memoryRequestMiB: r.memory_request_mib,
        memoryLimitMiB: r.memory_limit_mib,
        gpuLimit: r.gpu_limit,
      },
      ports: { default: local ? 0 : 8888 },
      overrides: backend.capabilities.overridesKey ? profile[backend.capabilities.overridesKey] : undefined,
    };
  }

  function urlOf(state: WorkloadState): string | undefined {
    const port = state.ports?.default ?? Object.values(state.ports ?? {})[0];
    return state.host && port ? `http://${state.host}:${port}` : undefined;
  }

  /** Waits until the server answers HTTP, exits, is stopped by someone else, or the deadline passes. */
  async function awaitReady(row: ServerRow, url: string, prefix: string, deadline: number): Promise<'ready' | 'superseded' | { failed: string; exitCode?: number }> {
    let delay = 25;
    for (;;) {
      const current = await getServer(db, row.id);
      if (!current || current.generation !== row.generation || current.state !== 'pending') return 'superseded';
      const state = await backend.state(row.workload_name);
      if (state.phase === 'exited' || state.phase === 'missing') {
        return { failed: `server ${state.reason ?? (state.phase === 'missing' ? 'disappeared' : 'exited')} before it was ready`, exitCode: state.exitCode };
      }
      if (state.phase === 'running' && (await answersHttp(`${url}${prefix}api`, 2000))) return 'ready';
      if (Date.now() > deadline) return { failed: `server did not answer HTTP within ${Math.round((deadline - row.requested_at.getTime()) / 1000)} s` };
      await sleep(delay);
      delay = Math.min(delay * 2, 250);
    }
  }

  /**
   * The port was free when the backend chose it, but something (often an outgoing connection, which
   * takes ephemeral ports) bound it before the server did: throws so that the job's retry starts the
   * server again on another port. Returns when the output says nothing of the kind (or no retry is left).
   */
  async function retryIfPortTaken(row: ServerRow, output: string[], attempt: number, why: string): Promise<void> {
    if (attempt >= START_ATTEMPTS || !PORT_TAKEN.test(output.join('\n'))) return;
    await backend.stop(row.workload_name, { graceSeconds: 1 }).catch(() => undefined);
    await event(row, 15, "the server's port was taken before it could listen; starting again on another port");
    throw new TransientBackendError(`server port taken (${why})`);
  }

  async function handleStart(job: JobInfo<StartJobData>): Promise<void> {
    const data = job.data;
    metrics.queueWait.observe({ job: SERVER_START_JOB }, Math.max(0, Date.now() - job.addedAt) / 1000);
    const begun = await beginServerStart(db, data.serverId, data.generation);
    if (!begun) return;
    const { row, token } = begun;
    const profile = deps.catalog.forUser(row.username).find((p) => p.slug === row.profile);
    if (!profile) {
      await fail(row, `profile '${row.profile}' is no longer available to '${row.username}'`);
      return;
    }
    const spec = buildSpec(row, profile, data, token);
    // Progress writes are chained (kept in order) and not awaited before the backend call: they are
    // for the user's eyes and must not delay the start.
    let progressWrites = event(row, 10, `Starting server on the ${backend.name} backend`).catch(() => undefined);
    const overheadMs = performance.timeOrigin + performance.now() - data.receivedAt;
    metrics.startOverhead.observe(overheadMs / 1000);
    log.debug('backend called', { overheadMs, server: row.id });
    const deadline = row.requested_at.getTime() + data.startTimeoutSeconds * 1000;
    let lastProgress: string | undefined;
    let state: WorkloadState;
    try {
      // Bounded by the start deadline: a backend that never answers must not leave the start hanging.
      state = await beforeDeadline(
        backend.ensure(spec, (e) => {
          if (e.type === 'progress' && e.message) {
            const message = e.message;
            lastProgress = message;
            progressWrites = progressWrites.then(() => event(row, 40, message)).catch(() => undefined);
          }
        }),
        deadline,
        () => `the ${backend.name} backend did not create the server within ${data.startTimeoutSeconds} s${lastProgress ? ` (last: ${lastProgress})` : ''}`,
      );
      await progressWrites;
    } catch (err) {
      await progressWrites;
      if (err instanceof StartDeadlineError) {
        await fail(row, err.message, { lastOutput: await outputOf(row.workload_name) });
        await backend.stop(row.workload_name, { graceSeconds: 1 }).catch(() => undefined);
        throw new UnrecoverableJobError(err.message);
      }
      const message = (err as Error).message;
      if (err instanceof PermanentBackendError || job.attempt >= START_ATTEMPTS) {
        await fail(row, `could not start the server: ${message}`, { lastOutput: await outputOf(row.workload_name) });
        await backend.stop(row.workload_name, { graceSeconds: 1 }).catch(() => undefined);
        throw new UnrecoverableJobError(message);
      }
      await event(row, 15, `backend busy, retrying: ${message}`);
      throw err;
    }
    // A stop that raced the start: remove what we just made.
    const after = await getServer(db, row.id);
    if (!after || after.generation !== row.generation || after.state !== 'pending') {
      await backend.stop(row.workload_name, { graceSeconds: 2 }).catch(() => undefined);
      return;
    }
    await transitionServer(db, row.id, row.generation, ['pending'], 'pending', { backendRef: state.ref ?? null });
    let url = urlOf(state);
    while (!url) {
      // Pod or container scheduled but not yet addressed.
      await sleep(100);
      state = await backend.state(row.workload_name);
      if (state.phase === 'exited' || state.phase === 'missing' || Date.now() > deadline) break;
      url = urlOf(state);
    }
    if (!url) {
      const output = await outputOf(row.workload_name);
      await retryIfPortTaken(row, output, job.attempt, state.reason ?? 'exited');
      await fail(row, `server ${state.reason ?? 'never got an address'}`, { exitCode: state.exitCode ?? null, lastOutput: output });
      await backend.stop(row.workload_name, { graceSeconds: 1 }).catch(() => undefined);
      return;
    }
    await event(row, 50, 'Server process started, waiting for it to answer');
    const prefix = data.env.JUPYTERHUB_SERVICE_PREFIX ?? '/';
    const outcome = await awaitReady(row, url, prefix, deadline);
    if (outcome === 'superseded') return;
    if (outcome !== 'ready') {
      const output = await outputOf(row.workload_name);
      await retryIfPortTaken(row, output, job.attempt, outcome.failed);
      await fail(row, outcome.failed, { exitCode: outcome.exitCode ?? null, lastOutput: output });
      await backend.stop(row.workload_name, { graceSeconds: 1 }).catch(() => undefined);
      return;
    }
    const ready = await transitionServer(db, row.id, row.generation, ['pending'], 'running', { url });
    if (!ready) return;
    metrics.spawns.inc({ outcome: 'ready' });
    metrics.spawnDuration.observe({ outcome: 'ready' }, (Date.now() - row.requested_at.getTime()) / 1000);
    await event(row, 100, `Server ready at ${url}`, { ready: true });
    log.info('server ready', { user: row.username, server: row.server_name, backend: backend.name });
  }

  async function handleStop(job: JobInfo<StopJobData>): Promise<void> {
    const row = await getServer(db, job.data.serverId);
    if (!row || row.generation !== job.data.generation || row.state !== 'stopping') return;
    await backend.stop(row.workload_name, { graceSeconds: job.data.graceSeconds });
    await revokeServerTokens(db, row.id);
    await transitionServer(db, row.id, row.generation, ['stopping'], 'stopped', { exitCode: 0, url: null });
    notifier.notify(row.id);
    log.info('server stopped', { user: row.username, server: row.server_name });
  }

  /** A workload exited on its own (crash, OOM, killed): the hub's next poll must see it. */
  async function onWorkloadExit(state: WorkloadState): Promise<void> {
    const row = await findServerByWorkload(db, state.name);
    if (!row || row.state !== 'running') return;
    const output = await outputOf(row.workload_name);
    const failed = state.exitCode !== 0;
    await transitionServer(db, row.id, row.generation, ['running'], failed ? 'failed' : 'stopped', {
      exitCode: state.exitCode ?? 1,
      message: `server ${state.reason ?? 'exited'}`,
      lastOutput: output,
      url: null,
    });
    await revokeServerTokens(db, row.id);
    await backend.stop(row.workload_name, { graceSeconds: 1 }).catch(() => undefined);
    notifier.notify(row.id);
    log.warn('server exited on its own', { user: row.username, server: row.server_name, reason: state.reason });
  }

  return {
    /**
     * Claims the server and queues its start. Idempotent: a server already pending or running is
     * returned as it is and no job is added. Returns the row and whether a new start began.
     */
    async requestStart(req: StartRequest): Promise<{ row: ServerRow; created: boolean }> {
      const claim = await claimServerStart(db, {
        username: req.username,
        serverName: req.serverName,
        workloadName: serverWorkloadName(req.username, req.serverName),
        backend: backend.name,
        profile: req.profile.slug,
        userOptions: req.userOptions,
      });
      if (!claim.created) return claim;
      const data: StartJobData = {
        serverId: claim.row.id,
        generation: claim.row.generation,
        env: req.env,
        args: req.args,
        startTimeoutSeconds: req.startTimeoutSeconds ?? config.env.SPAWNGATE_START_TIMEOUT,
        receivedAt: req.receivedAt,
      };
      try {
        await queue.add(SERVER_START_JOB, data, { jobId: `server-start-${claim.row.id}-${claim.row.generation}`, attempts: START_ATTEMPTS, backoffMs: 500 });
      } catch (err) {
        // Nothing will run the start: release the claim so the user can retry once the queue is back.
        await transitionServer(db, claim.row.id, claim.row.generation, ['pending'], 'failed', { message: `job queue unavailable: ${(err as Error).message}` });
        throw err;
      }
      return claim;
    },

    /** Queues a stop. Idempotent: stopped/failed/unknown servers are returned unchanged. */
    async requestStop(username: string, serverName: string, graceSeconds = 5): Promise<ServerRow | undefined> {
      const row = await findServer(db, username, serverName);
      if (!row) return undefined;
      if (row.state === 'pending' || row.state === 'running') {
        const updated = await transitionServer(db, row.id, row.generation, ['pending', 'running'], 'stopping');
        if (updated) {
          await addServerEvent(db, row.id, row.generation, { progress: 100, message: 'Server stop requested', failed: true });
          notifier.notify(row.id);
        }
      }
      const current = (await getServer(db, row.id)) ?? row;
      if (current.state === 'stopping') {
        await queue.add(SERVER_STOP_JOB, { serverId: row.id, generation: current.generation, graceSeconds } satisfies StopJobData, {
          jobId: `server-stop-${row.id}-${current.generation}`,
          attempts: 5,
          backoffMs: 500,
        });
      }
      return current;
    },

    /** Registers the start/stop handlers and the exit watch in this process (serve and worker). */
    startWorkers(concurrency: number): () => void {
      queue.process<StartJobData, void>(SERVER_START_JOB, handleStart, { concurrency });
      queue.process<StopJobData, void>(SERVER_STOP_JOB, handleStop, { concurrency });
      const unwatch = backend.watch?.((e) => {
        if (e.type === 'state' && e.state && (e.state.phase === 'exited' || e.state.phase === 'missing')) {
          void onWorkloadExit(e.state).catch((err) => log.error('exit handling failed', { error: err }));
        }
      });
      return () => unwatch?.();
    },

    /**
     * Stops every active server now and records it as stopped (graceful service shutdown of a backend
     * whose workloads cannot outlive the service, like `local` under JupyterHub's cleanup_servers).
     */
    async stopAllNow(graceSeconds = 3): Promise<number> {
      const rows = await listActiveServers(db);
      await Promise.all(
        rows.map(async (row) => {
          await backend.stop(row.workload_name, { graceSeconds }).catch((err) => log.warn('stop failed', { error: err }));
          await revokeServerTokens(db, row.id);
          await transitionServer(db, row.id, row.generation, ['pending', 'running', 'stopping'], 'stopped', { exitCode: 0, url: null, message: 'stopped at spawngate shutdown' });
          notifier.notify(row.id);
        }),
      );
      return rows.length;
    },

    /**
     * Compares backend reality with the database: removes workloads nobody records, closes records
     * whose workload is gone, re-queues stops that were in flight. Safe to run on every replica.
     */
    async reconcile(opts: { startup?: boolean } = {}): Promise<{ removed: string[]; closed: number[]; adopted: number[] }> {
      const workloads = (await backend.list()).filter((w) => w.name.startsWith('sg-srv-'));
      const byName = new Map(workloads.map((w) => [w.name, w]));
      const active = await listActiveServers(db);
      const known = new Set(active.map((r) => r.workload_name));
      const removed: string[] = [];
      const closed: number[] = [];
      const adopted: number[] = [];
      for (const w of workloads) {
        if (!known.has(w.name) && (w.phase === 'running' || w.phase === 'pending' || w.phase === 'exited')) {
          await backend.stop(w.name, { graceSeconds: 2 });
          removed.push(w.name);
        }
      }
      // Outside start-up a pending row normally has its start job running right now; it is only
      // abandoned once it is well past any start deadline.
      const abandonedBefore = Date.now() - (config.env.SPAWNGATE_START_TIMEOUT + 60) * 1000;
      for (const row of active) {
        if (!opts.startup && row.state === 'pending' && row.requested_at.getTime() > abandonedBefore) continue;
        const w = byName.get(row.workload_name);
        const alive = w && (w.phase === 'running' || w.phase === 'pending');
        if (row.state === 'stopping') {
          await this.requestStop(row.username, row.server_name);
        } else if (alive && row.state === 'running') {
          adopted.push(row.id);
        } else if (alive && row.state === 'pending' && (queue.kind === 'inprocess' || !opts.startup)) {
          // The start job died with the previous process; the workload exists, so stop it cleanly and let
          // the hub (which saw no ready server) retry.
          await backend.stop(row.workload_name, { graceSeconds: 2 });
          await fail(row, 'spawngate restarted while this server was starting; start it again');
          closed.push(row.id);
        } else if (!alive && (row.state === 'running' || queue.kind === 'inprocess' || !opts.startup)) {
          const output = await outputOf(row.workload_name);
          const message = row.state === 'running' ? 'server disappeared while spawngate was down' : 'spawngate restarted while this server was starting; start it again';
          await transitionServer(db, row.id, row.generation, ['pending', 'running'], 'failed', { message, exitCode: w?.exitCode ?? 1, lastOutput: output, url: null });
          await revokeServerTokens(db, row.id);
          if (w) await backend.stop(row.workload_name, { graceSeconds: 1 }).catch(() => undefined);
          closed.push(row.id);
        }
      }
      if (removed.length || closed.length || adopted.length) log.info('reconciled servers', { removed: removed.length, closed: closed.length, adopted: adopted.length });
      return { removed, closed, adopted };
    },
  };
}

export type ServerLifecycle = ReturnType<typeof createServerLifecycle>;
