/**
 * Single-user server lifecycle: the API asks for a start or stop, a job does it through the backend.
 * The database row is the source of truth; each start bumps `generation`, so a stale or duplicated
 * job sees it lost and does nothing. Workload names are deterministic, so a retried start adopts the
 * process or pod it created before instead of making a second one. Fair share: a user's servers and
 * starts in flight are counted in the database under a per-user lock before a start is queued.
 */
import type { WorkloadState } from '../backends';
import { k8sRules, type Profile } from '../config';
import {
  addServerEvent,
  claimServerStart,
  countUserServers,
  findServer,
  findServerByWorkload,
  getServer,
  listActiveServers,
  lockUserServers,
  revokeServerTokens,
  transitionServer,
  type ServerRow,
} from '../db';
import { stopQuietly, watchExits, type JobInfo } from '../jobs';
import { LimitExceededError, ProfileError, SERVER_WORKLOAD_PREFIX, serverWorkloadName } from '../profiles';
import { PROGRESS, progressText } from './progress-messages';
import { createServerContext, type ServerContext, type ServerLifecycleDeps } from './server-context';
import { reconcileServers } from './server-reconcile';
import { SERVER_START_JOB, START_ATTEMPTS, startJobHandler, type StartJobData } from './start-job';

export { SERVER_START_JOB } from './start-job';
export type { ServerLifecycleDeps } from './server-context';
export const SERVER_STOP_JOB = 'server.stop';
/** Seconds a client refused for starts in flight should wait: about one server start. */
const IN_FLIGHT_RETRY_SECONDS = 10;
const COUNT_RETRY_SECONDS = 30;

interface StopJobData {
  serverId: number;
  generation: number;
  graceSeconds: number;
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

/** Throws `LimitExceededError` when one more server start of `username` would pass a limit. */
function checkServerLimits(ctx: ServerContext, username: string, counts: { live: number; pending: number }): void {
  const limits = ctx.config.file.servers;
  if (counts.pending >= limits.max_spawns_in_flight_per_user) {
    throw new LimitExceededError(
      `user '${username}' already has ${counts.pending} servers starting (servers.max_spawns_in_flight_per_user is ${limits.max_spawns_in_flight_per_user}); try again when one is ready`,
      'servers.max_spawns_in_flight_per_user',
      IN_FLIGHT_RETRY_SECONDS,
    );
  }
  if (counts.live >= limits.max_servers_per_user) {
    throw new LimitExceededError(
      `user '${username}' already has ${counts.live} servers (limit ${limits.max_servers_per_user}, servers.max_servers_per_user)`,
      'servers.max_servers_per_user',
      COUNT_RETRY_SECONDS,
    );
  }
}

export function createServerLifecycle(deps: ServerLifecycleDeps) {
  const ctx = createServerContext(deps);
  const { db, queue, backend, config, notifier, log } = ctx;

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
    const output = await ctx.outputOf(row.workload_name);
    const failed = state.exitCode !== 0;
    await transitionServer(db, row.id, row.generation, ['running'], failed ? 'failed' : 'stopped', {
      exitCode: state.exitCode ?? 1,
      message: `server ${state.reason ?? 'exited'}`,
      lastOutput: output,
      url: null,
    });
    await revokeServerTokens(db, row.id);
    await stopQuietly(backend, row.workload_name);
    notifier.notify(row.id);
    log.warn('server exited on its own', { user: row.username, server: row.server_name, reason: state.reason });
  }

  /**
   * Env names the backend would refuse (Kubernetes before 1.32: C identifiers only) — the hub's or the
   * profile's — are a 400 naming them, before anything is claimed or queued.
   */
  async function assertEnvNamesFit(req: StartRequest): Promise<void> {
    const rule = await backend.envNameRule?.();
    if (!rule) return;
    const problems = [...k8sRules.envProblems('env', req.env, rule), ...k8sRules.envProblems(`profile '${req.profile.slug}' env`, req.profile.env, rule)];
    if (problems.length) throw new ProfileError(`the server's environment has names the ${backend.name} backend refuses: ${problems.join('; ')}`);
  }

  const lifecycle = {
    /**
     * Claims the server and queues its start. Idempotent: a server already pending or running is
     * returned as it is and no job is added. Returns the row and whether a new start began. Throws
     * `LimitExceededError` (before anything is queued) when a new start would pass a fair-share limit.
     */
    async requestStart(req: StartRequest): Promise<{ row: ServerRow; created: boolean }> {
      await assertEnvNamesFit(req);
      const claim = await db
        .tx(async (q) => {
          await lockUserServers(q, req.username);
          const existing = await findServer(q, req.username, req.serverName);
          const live = existing && ['pending', 'running', 'stopping'].includes(existing.state);
          if (!live) checkServerLimits(ctx, req.username, await countUserServers(q, req.username));
          return claimServerStart(q, {
            username: req.username,
            serverName: req.serverName,
            workloadName: serverWorkloadName(req.username, req.serverName),
            backend: backend.name,
            profile: req.profile.slug,
            userOptions: req.userOptions,
          });
        })
        .catch((err: unknown) => {
          if (err instanceof LimitExceededError) ctx.metrics.launchesRefused.inc({ kind: 'server', reason: 'fair_share', limit: err.limit });
          throw err;
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
          await addServerEvent(db, row.id, row.generation, { progress: PROGRESS.done, message: progressText.stopRequested(), failed: true });
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
      queue.process<StartJobData, void>(SERVER_START_JOB, startJobHandler(ctx), { concurrency });
      queue.process<StopJobData, void>(SERVER_STOP_JOB, handleStop, { concurrency });
      return watchExits(backend, SERVER_WORKLOAD_PREFIX, (state) => {
        void onWorkloadExit(state).catch((err) => log.error('exit handling failed', { error: err }));
      });
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

    /** See `reconcileServers`. */
    reconcile(opts: { startup?: boolean } = {}): Promise<{ removed: string[]; closed: number[]; adopted: number[] }> {
      return reconcileServers(ctx, (u, s) => lifecycle.requestStop(u, s), opts);
    },
  };
  return lifecycle;
}

export type ServerLifecycle = ReturnType<typeof createServerLifecycle>;
