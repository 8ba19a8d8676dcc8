/**
 * The kernel gateway's lifecycle: launch (quota check, then a queued job that starts the workload and
 * waits for `kernel_info`), list, interrupt, restart, shutdown, death and culling. Backends only run
 * processes; HTTP only calls these functions.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { Backend, WorkloadEvent, WorkloadSpec, WorkloadState } from '../../backends';
import { CONNECTION_INFO_ENV, PermanentBackendError, UnsupportedError, userLabelValue } from '../../backends';
import type { Config } from '../../config';
import {
  countLiveKernels,
  getKernel,
  insertKernel,
  listKernels,
  livePorts,
  updateKernelPorts,
  recordLaunch,
  updateKernel,
  type Db,
  type KernelLimits,
  type KernelRow,
  type SecretBox,
} from '../../db';
import { UnrecoverableJobError, type JobInfo, type JobQueue } from '../../jobs';
import type { Logger } from '../../logging';
import type { KernelspecCatalog } from '../catalog';
import { KernelClient } from '../channels';
import { BridgeRegistry } from './bridge-registry';
import { CONTAINER_KERNEL_PORTS, connectionInfo, kernelAddress, newKernelKey, PortAllocator, reachedPorts, REACHED_PORTS_KEY, removeConnectionFile, writeConnectionFile } from './connection-files';
import { filterKernelEnv, launchTimeoutFrom } from './env-hygiene';
import { KernelLaunchError, KernelNotFoundError, KernelQuotaError, KernelRequestError } from './errors';
import { toKernelModel, type KernelModel } from './kernel-model';
import { grantFor, limitVariables } from './quota-check';

export const KERNEL_LAUNCH_JOB = 'kernel.launch';
export const KERNEL_CULL_JOB = 'kernel.cull';

interface LaunchJobData {
  kernelId: string;
  launchTimeoutMs: number;
}

export interface KernelServiceDeps {
  db: Db;
  queue: JobQueue;
  backend: Backend;
  catalog: KernelspecCatalog;
  config: Config;
  secrets: SecretBox;
  logger: Logger;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function kernelWorkloadName(kernelId: string): string {
  return `sg-krn-${kernelId}`;
}

export function createKernelService(deps: KernelServiceDeps) {
  const { db, queue, backend, config, secrets } = deps;
  const log = deps.logger.child({ component: 'kernels' });
  const kcfg = config.file.kernels;
  const connectionDir = path.join(config.dataDir, 'kernels');
  const local = backend.capabilities.hostProcesses;
  const ports = new PortAllocator(kcfg.port_range);
  const registry = new BridgeRegistry({ db, secrets, logger: deps.logger, onDead: (id) => void markDead(id, 'the kernel stopped answering its heartbeat') });

  async function markDead(kernelId: string, reason: string): Promise<void> {
    const row = await updateKernel(db, kernelId, { state: 'dead', execution_state: 'dead', message: reason, from: ['running'] }).catch(() => undefined);
    if (row) {
      registry.broadcast(kernelId, 'dead');
      log.warn('kernel died', { kernel_id: kernelId, user: row.username, reason });
    }
  }

  async function ownKernel(username: string | undefined, kernelId: string): Promise<KernelRow> {
    const row = await getKernel(db, kernelId);
    // Someone else's kernel is reported exactly like a missing one: ids are not an oracle.
    if (!row || (username !== undefined && row.username !== username)) throw new KernelNotFoundError(kernelId);
    return row;
  }

  function workloadSpec(row: KernelRow, connectionFile: string | undefined): WorkloadSpec {
    const l = row.limits;
    const home = path.join(config.env.SPAWNGATE_HOME_ROOT, row.username);
    const env: Record<string, string> = {
      ...row.launch.env,
      ...limitVariables(l),
      KERNEL_ID: row.id,
      KERNEL_USERNAME: row.username,
    };
    if (local) {
      if (process.env.PATH && env.PATH === undefined) env.PATH = process.env.PATH;
      env.HOME = home;
      if (process.env.LANG && env.LANG === undefined) env.LANG = process.env.LANG;
    }
    let command: string[];
    if (local) {
      command = row.launch.argv.map((a) => (connectionFile ? a.replace('{connection_file}', connectionFile) : a));
    } else {
      // In a container the launcher writes the connection file (from a Secret or a file copied in) and
      // execs the kernelspec's argv; the key travels in CONNECTION_INFO_ENV, which backends lift out.
      command = [...kcfg.launcher];
      env.SPAWNGATE_KERNEL_ARGV = JSON.stringify(row.launch.argv);
      env[CONNECTION_INFO_ENV] = JSON.stringify(connectionInfo('0.0.0.0', row.ports, secrets.open(row.key_ciphertext), row.kernel_name));
      env.HOME = home;
    }
    return {
      name: row.workload_name,
      kind: 'kernel',
      labels: {
        app: 'spawngate',
        component: 'kernel',
        kernel_id: row.id,
        'app.kubernetes.io/name': 'spawngate',
        'app.kubernetes.io/component': 'kernel',
        'spawngate/user': userLabelValue(row.username),
        // The kubernetes backend places an experiment's kernels in that experiment's namespace (if configured).
        ...(row.experiment_name ? { 'spawngate/experiment': row.experiment_name } : {}),
      },
      command,
      env,
      image: row.launch.image,
      workingDir: row.launch.workingDir,
      resources: {
        cpuRequest: l.cpu_request,
        cpuLimit: l.cpu_limit,
        memoryRequestMiB: l.memory_request_mib,
        memoryLimitMiB: l.memory_limit_mib,
        gpuLimit: l.gpu_limit,
      },
      ports: { shell: row.ports.shell_port, iopub: row.ports.iopub_port, stdin: row.ports.stdin_port, control: row.ports.control_port, hb: row.ports.hb_port },
    };
  }

  /**
   * The image a container kernel runs: the kernelspec's Enterprise Gateway `image_name` when the admin
   * allowed it (a user's own kernel.json must not pick arbitrary images), else `kernels.image`.
   */
  function containerImage(metadata: Record<string, unknown>, kernelName: string): string {
    const named = (metadata.process_proxy as { config?: { image_name?: string } } | undefined)?.config?.image_name;
    if (named !== undefined) {
      if (!kcfg.allowed_images.includes(named)) {
        throw new KernelRequestError(`kernelspec '${kernelName}' asks for image '${named}', which is not in kernels.allowed_images`);
      }
      return named;
    }
    if (!kcfg.image) throw new KernelRequestError(`no kernel image configured for the ${backend.name} backend (set kernels.image)`);
    return kcfg.image;
  }

  async function outputOf(name: string): Promise<string> {
    try {
      const lines = backend.logs ? await backend.logs(name, 15) : [];
      return lines.length ? `; last output:\n${lines.join('\n')}` : '';
    } catch {
      return '';
    }
  }

  /**
   * Starts (or adopts) the workload and waits until the kernel answers kernel_info, failing as soon as
   * the workload exits. Returns where the kernel is reached (host and ports).
   */
  async function bringUp(row: KernelRow, timeoutMs: number): Promise<{ host: string; ports: KernelRow['ports'] }> {
    let connectionFile: string | undefined;
    if (local) {
      connectionFile = await writeConnectionFile(connectionDir, row.id, connectionInfo('127.0.0.1', row.ports, secrets.open(row.key_ciphertext), row.kernel_name));
    }
    // The backend's progress (pod events, image pulls) is logged, and the last of it is named when the
    // launch times out: "no address within 60 s" alone hides whether the image was still pulling.
    let lastEvent: string | undefined;
    const onEvent = (e: WorkloadEvent): void => {
      if (e.type !== 'progress' || !e.message) return;
      lastEvent = e.message;
      log.info('kernel launch progress', { kernel_id: row.id, user: row.username, event: e.message });
    };
    const lastSeen = (): string => (lastEvent ? `; last event: ${lastEvent}` : '');
    let state: WorkloadState = await backend.ensure(workloadSpec(row, connectionFile), onEvent);
    const deadline = Date.now() + timeoutMs;
    while (!state.host) {
      if (state.phase === 'exited' || state.phase === 'missing') break;
      if (Date.now() > deadline) throw new KernelLaunchError(`kernel got no address within ${Math.round(timeoutMs / 1000)} s${lastSeen()}`);
      await sleep(100);
      state = await backend.state(row.workload_name);
    }
    if (state.phase === 'exited' || state.phase === 'missing') {
      throw new KernelLaunchError(`kernel process ${state.reason ?? 'exited'}${await outputOf(row.workload_name)}`);
    }
    const host = state.host!;
    // Published container ports are reached at the host ports the backend reports, not the kernel's own.
    const reach = reachedPorts(row.ports, state.ports);
    await updateKernel(db, row.id, { host, backend_ref: { ...(state.ref ?? {}), [REACHED_PORTS_KEY]: reach } });
    const probe = new KernelClient({ connection: connectionInfo(host, reach, secrets.open(row.key_ciphertext), row.kernel_name), kernelId: row.id, heartbeat: false, logger: deps.logger });
    const watcher = new AbortController();
    try {
      const exited = (async (): Promise<never> => {
        for (;;) {
          await sleep(100);
          if (watcher.signal.aborted) return new Promise<never>(() => undefined);
          const s = await backend.state(row.workload_name);
          if (s.phase === 'exited' || s.phase === 'missing') {
            throw new KernelLaunchError(`kernel process ${s.reason ?? 'exited'} before it answered${await outputOf(row.workload_name)}`);
          }
        }
      })();
      await Promise.race([
        probe.kernelInfo(Math.max(1000, deadline - Date.now())).catch((err: Error) => {
          throw new KernelLaunchError(`kernel did not answer kernel_info within ${Math.round(timeoutMs / 1000)} s (${err.message})${lastSeen()}`);
        }),
        exited,
      ]);
    } finally {
      watcher.abort();
      await probe.close({ closeWebsockets: false });
    }
    return { host, ports: reach };
  }

  async function handleLaunch(job: JobInfo<LaunchJobData>): Promise<void> {
    let row = await getKernel(db, job.data.kernelId);
    if (!row || row.state !== 'starting') return;
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          await bringUp(row, job.data.launchTimeoutMs);
          break;
        } catch (err) {
          // Another process took a port between our choice and the kernel's bind: new ports, again.
          if (!(local && attempt < 3 && /Address already in use/.test((err as Error).message))) throw err;
          await backend.stop(row.workload_name, { graceSeconds: 1 });
          const fresh = await ports.allocate(await livePorts(db, backend.name));
          await updateKernelPorts(db, row.id, fresh);
          ports.release(fresh);
          log.info('kernel port taken, relaunching with new ports', { kernel_id: row.id, attempt });
          row = (await getKernel(db, row.id)) ?? row;
        }
      }
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      await updateKernel(db, row.id, { state: 'failed', execution_state: 'dead', message, from: ['starting'] });
      await backend.stop(row.workload_name, { graceSeconds: 1 }).catch(() => undefined);
      if (local) await removeConnectionFile(connectionDir, row.id).catch(() => undefined);
      await recordLaunch(db, { kernelId: row.id, username: row.username, kernelName: row.kernel_name, environment: row.environment, experimentName: row.experiment_name, limits: row.limits, outcome: 'failed', message });
      log.warn('kernel launch failed', { kernel_id: row.id, user: row.username, kernel: row.kernel_name, reason: message.split('\n')[0] });
      if (err instanceof KernelLaunchError || err instanceof PermanentBackendError) throw new UnrecoverableJobError(message);
      throw err;
    }
    const running = await updateKernel(db, row.id, { state: 'running', execution_state: 'idle', message: null, from: ['starting'] });
    if (!running) {
      // Shut down while launching: do not leave the workload behind.
      await backend.stop(row.workload_name, { graceSeconds: 1 }).catch(() => undefined);
      return;
    }
    await recordLaunch(db, { kernelId: row.id, username: row.username, kernelName: row.kernel_name, environment: row.environment, experimentName: row.experiment_name, limits: row.limits, outcome: 'started' });
    log.info('kernel started', { kernel_id: row.id, user: row.username, kernel: row.kernel_name, experiment: row.experiment_name });
  }

  /** Waits up to `ms` for the workload to exit on its own (after a shutdown_reply). */
  async function exitedWithin(name: string, ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    for (;;) {
      const s = await backend.state(name);
      if (s.phase === 'exited' || s.phase === 'missing') return true;
      if (Date.now() >= deadline) return false;
      await sleep(50);
    }
  }

  /**
   * Shuts a kernel down: shutdown_request, a grace period to exit on its own, then the backend stops
   * what is left. The row leaves `running` first, so the exit is not mistaken for a death.
   */
  async function terminate(row: KernelRow, opts: { restartable?: boolean; reason?: string } = {}): Promise<void> {
    if (!opts.restartable) {
      await updateKernel(db, row.id, { state: 'terminated', execution_state: 'dead', message: opts.reason ?? null });
    }
    const grace = kcfg.shutdown_grace_seconds * 1000;
    if (row.state === 'running' && !registry.get(row.id)?.isDead) {
      const client = registry.clientFor(row);
      const replied = await client.shutdown({ restart: false, timeoutMs: Math.max(1000, grace) }).then(
        () => true,
        () => false,
      );
      if (replied) await exitedWithin(row.workload_name, Math.min(grace, 3000));
    }
    await backend.stop(row.workload_name, { graceSeconds: Math.min(kcfg.shutdown_grace_seconds, 5) });
    if (opts.restartable) return;
    await registry.release(row.id);
    if (local) await removeConnectionFile(connectionDir, row.id).catch(() => undefined);
  }

  return {
    registry,

    /** POST /api/kernels. Resolves with the running kernel's model (201), or throws a named error. */
    async start(username: string, body: { name?: unknown; env?: unknown }): Promise<KernelModel> {
      const requested = body.name === undefined || body.name === null || body.name === '' ? undefined : body.name;
      if (requested !== undefined && typeof requested !== 'string') throw new KernelRequestError("'name' must be a kernelspec name");
      const name = requested ?? (await deps.catalog.list(username)).default;
      const spec = await deps.catalog.resolve(username, name);
      const { env, dropped } = filterKernelEnv(body.env, kcfg.env_allowlist);
      if (dropped.length) log.debug('kernel env variables dropped', { user: username, count: dropped.length });
      const timeoutSeconds = launchTimeoutFrom(env, 3600) ?? kcfg.launch_timeout_seconds;
      const grant = await grantFor(db, config, username, spec.environment, spec.name);
      const id = randomUUID();
      const home = path.join(config.env.SPAWNGATE_HOME_ROOT, username);
      const wd = env.KERNEL_WORKING_DIR;
      const workingDir = wd && path.resolve(wd).startsWith(home + path.sep) ? path.resolve(wd) : undefined;
      const kernelPorts = local ? await ports.allocate(await livePorts(db, backend.name)) : CONTAINER_KERNEL_PORTS;
      const limits: KernelLimits = grant.limits;
      const image = local ? undefined : containerImage(spec.spec.metadata, spec.name);
      const row = await db.tx(async (q) => {
        // Serialized per user (and experiment) so two concurrent launches cannot both pass the limit.
        await q.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`kernels:${username}`]);
        if (grant.experimentId !== null) await q.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`kernels:experiment:${grant.experimentId}`]);
        const live = await countLiveKernels(q, username, grant.experimentId);
        if (kcfg.max_kernels_per_user !== undefined && live.user >= kcfg.max_kernels_per_user) {
          throw new KernelQuotaError(`user '${username}' already has ${live.user} kernels running or starting (limit ${kcfg.max_kernels_per_user})`);
        }
        if (kcfg.max_kernels_per_experiment !== undefined && grant.experimentId !== null && live.experiment >= kcfg.max_kernels_per_experiment) {
          throw new KernelQuotaError(`experiment '${grant.experimentName}' already has ${live.experiment} kernels running or starting (limit ${kcfg.max_kernels_per_experiment}; environment '${spec.environment}')`);
        }
        return insertKernel(q, {
          id,
          username,
          kernel_name: spec.name,
          environment: spec.environment,
          experiment_id: grant.experimentId,
          experiment_name: grant.experimentName,
          limits,
          backend: backend.name,
          workload_name: kernelWorkloadName(id),
          ports: kernelPorts,
          key_ciphertext: secrets.seal(newKernelKey()),
          interrupt_mode: spec.spec.interrupt_mode === 'message' ? 'message' : 'signal',
          launch: { argv: spec.spec.argv.map((a) => a.replace('{resource_dir}', spec.dir)), env: { ...spec.spec.env, ...env }, workingDir, image },
        });
      }).finally(() => {
        // Recorded (or refused): from here the database keeps these ports from being handed out again.
        if (local) ports.release(kernelPorts);
      });
      const jobId = `kernel-launch-${id}`;
      try {
        await queue.add<LaunchJobData>(KERNEL_LAUNCH_JOB, { kernelId: id, launchTimeoutMs: timeoutSeconds * 1000 }, { jobId, attempts: 3, backoffMs: 500 });
      } catch (err) {
        // Nothing will launch it: the row must not linger as a phantom kernel counted against limits.
        await updateKernel(db, id, { state: 'failed', execution_state: 'dead', message: `job queue unavailable: ${(err as Error).message}`, from: ['starting'] }).catch(() => undefined);
        throw err;
      }
      const result = await queue.waitFor(jobId, timeoutSeconds * 1000 + 30_000);
      const after = (await getKernel(db, id)) ?? row;
      if (after.state === 'running') return toKernelModel(after);
      if (!result) throw new KernelLaunchError(`kernel '${spec.name}' is still starting after ${timeoutSeconds} s`);
      throw new KernelLaunchError(after.message ?? result.error ?? 'kernel launch failed');
    },

    async list(username: string | undefined): Promise<KernelModel[]> {
      return (await listKernels(db, { username })).map((r) => toKernelModel(r));
    },

    async get(username: string | undefined, kernelId: string): Promise<KernelModel> {
      const row = await ownKernel(username, kernelId);
      if (row.state === 'terminated' || row.state === 'failed') throw new KernelNotFoundError(kernelId);
      return toKernelModel(row);
    },

    /** The kernel row for a websocket, after the ownership check. */
    async forChannels(username: string | undefined, kernelId: string): Promise<KernelRow> {
      const row = await ownKernel(username, kernelId);
      if (row.state === 'terminated' || row.state === 'failed') throw new KernelNotFoundError(kernelId);
      return row;
    },

    /** DELETE: idempotent — a kernel already shut down answers as success. */
    async shutdown(username: string | undefined, kernelId: string): Promise<void> {
      const row = await ownKernel(username, kernelId);
      if (row.state === 'terminated' || row.state === 'failed') return;
      await terminate(row);
      log.info('kernel shut down', { kernel_id: row.id, user: row.username });
    },

    async interrupt(username: string | undefined, kernelId: string): Promise<void> {
      const row = await ownKernel(username, kernelId);
      if (row.state !== 'running') throw new KernelRequestError(`kernel ${kernelId} is ${row.state}, it cannot be interrupted`);
      if (row.interrupt_mode === 'message') {
        await registry.clientFor(row).interrupt();
      } else if (backend.signal) {
        // A backend that cannot signal (kubernetes) says so: the kernel gets an interrupt_request instead.
        await backend.signal(row.workload_name, 'SIGINT').catch(async (err: unknown) => {
          if (!(err instanceof UnsupportedError)) throw err;
          await registry.clientFor(row).interrupt();
        });
      } else {
        await registry.clientFor(row).interrupt();
      }
    },

    /** Restart: same connection info, new process; websockets see `restarting`, then the kernel's own status. */
    async restart(username: string | undefined, kernelId: string): Promise<KernelModel> {
      const row = await ownKernel(username, kernelId);
      if (row.state === 'terminated' || row.state === 'failed') throw new KernelNotFoundError(kernelId);
      await updateKernel(db, row.id, { state: 'restarting', execution_state: 'restarting' });
      registry.broadcast(row.id, 'restarting');
      registry.get(row.id)?.pauseHeartbeat();
      // A dead kernel gets no shutdown_request: nothing would answer it, and the queued message would
      // reach (and stop) the new process once it binds the same port.
      await terminate(row, { restartable: true });
      let reached: { host: string; ports: KernelRow['ports'] };
      try {
        reached = await bringUp(row, kcfg.launch_timeout_seconds * 1000);
      } catch (err) {
        await updateKernel(db, row.id, { state: 'dead', execution_state: 'dead', message: (err as Error).message });
        registry.broadcast(row.id, 'dead');
        throw err;
      }
      const before = kernelAddress(row);
      if (before.host !== reached.host || (Object.keys(reached.ports) as (keyof KernelRow['ports'])[]).some((k) => before.ports[k] !== reached.ports[k])) {
        // A new container or pod is reached elsewhere (new published ports, new pod IP): the client
        // connected to the old address goes; its websockets close with 1001 and clients reconnect.
        log.info('kernel reached at a new address after restart; its websockets reconnect', { kernel_id: row.id, host: reached.host });
        await registry.release(row.id);
      }
      const bridge = registry.get(row.id);
      if (bridge) {
        // Like jupyter_client's wait_for_ready: the bridge's own sockets (not just the probe's) must reach
        // the new process before the restart is reported done; if they cannot, its websockets reconnect.
        const ready = await bridge.kernelInfo(10_000).then(
          () => true,
          () => false,
        );
        if (!ready) {
          log.warn('the bridge did not reach the restarted kernel; its websockets reconnect', { kernel_id: row.id });
          await registry.release(row.id);
        }
      }
      registry.get(row.id)?.resumeHeartbeat();
      const after = await updateKernel(db, row.id, { state: 'running', execution_state: 'idle', message: null });
      return toKernelModel(after ?? row);
    },

    /** A workload ended outside our control (crash, OOM, kill): mark the kernel dead. */
    async onWorkloadExit(state: WorkloadState): Promise<void> {
      if (!state.name.startsWith('sg-krn-')) return;
      const id = state.name.slice('sg-krn-'.length);
      const row = await getKernel(db, id);
      if (!row || row.state !== 'running') return;
      await markDead(id, `kernel process ${state.reason ?? 'exited'}`);
    },

    /** Shuts down idle kernels per EG's culling settings. Returns the ids culled. */
    async cull(now = Date.now()): Promise<string[]> {
      if (!(kcfg.cull_idle_timeout > 0)) return [];
      await registry.flush();
      const culled: string[] = [];
      for (const row of await listKernels(db, { states: ['running', 'dead'] })) {
        const idle = now - new Date(row.last_activity).getTime() > kcfg.cull_idle_timeout * 1000;
        if (!idle) continue;
        if (row.connections > 0 && !kcfg.cull_connected) continue;
        if (row.execution_state === 'busy' && !kcfg.cull_busy) continue;
        await terminate(row, { reason: `culled after ${kcfg.cull_idle_timeout} s of inactivity` });
        culled.push(row.id);
        log.info('kernel culled', { kernel_id: row.id, user: row.username, idle_seconds: Math.round((now - new Date(row.last_activity).getTime()) / 1000) });
      }
      return culled;
    },

    /** Registers the launch and cull jobs and the exit watch in this process. */
    async startWorkers(concurrency: number): Promise<() => void> {
      queue.process<LaunchJobData, void>(KERNEL_LAUNCH_JOB, handleLaunch, { concurrency });
      queue.process<Record<string, never>, string[]>(KERNEL_CULL_JOB, async () => this.cull(), { concurrency: 1 });
      if (kcfg.cull_idle_timeout > 0) await queue.repeat(KERNEL_CULL_JOB, kcfg.cull_interval * 1000);
      const unwatch = backend.watch?.((e) => {
        if (e.type === 'state' && e.state && (e.state.phase === 'exited' || e.state.phase === 'missing')) {
          void this.onWorkloadExit(e.state).catch((err) => log.error('kernel exit handling failed', { error: err }));
        }
      });
      return () => unwatch?.();
    },

    /**
     * Start-up reconciliation: kernel workloads nobody records are removed; running records whose
     * workload is gone are marked dead; launches left `starting` by a dead in-process queue fail.
     */
    async reconcile(opts: { startup?: boolean } = {}): Promise<{ removed: string[]; dead: string[] }> {
      const workloads = (await backend.list()).filter((w) => w.name.startsWith('sg-krn-'));
      const rows = await listKernels(db, { states: ['starting', 'running', 'restarting', 'dead'] });
      const known = new Map(rows.map((r) => [r.workload_name, r]));
      const removed: string[] = [];
      const dead: string[] = [];
      for (const w of workloads) {
        if (!known.has(w.name)) {
          await backend.stop(w.name, { graceSeconds: 1 });
          removed.push(w.name);
        }
      }
      const alive = new Set(workloads.filter((w) => w.phase === 'running' || w.phase === 'pending').map((w) => w.name));
      for (const r of rows) {
        if (r.state === 'running' && !alive.has(r.workload_name)) {
          await markDead(r.id, 'kernel process disappeared');
          dead.push(r.id);
        } else if (
          r.state === 'starting' &&
          ((opts.startup && queue.kind === 'inprocess') || Date.now() - new Date(r.created_at).getTime() > (kcfg.launch_timeout_seconds + 120) * 1000)
        ) {
          await updateKernel(db, r.id, { state: 'failed', message: 'spawngate restarted during the launch', from: ['starting'] });
          await backend.stop(r.workload_name, { graceSeconds: 1 }).catch(() => undefined);
        }
      }
      return { removed, dead };
    },

    async close(): Promise<void> {
      await registry.close();
    },
  };
}

export type KernelService = ReturnType<typeof createKernelService>;
