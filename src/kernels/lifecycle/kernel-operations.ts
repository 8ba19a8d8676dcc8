/**
 * What a user does to a kernel that exists: look at it, interrupt, restart, shut down. Someone else's
 * kernel is reported exactly like a missing one (ids are not an oracle).
 */
import { getKernel, listKernels, updateKernel, type KernelRow } from '../../db';
import { bringUp, type ReachedKernel } from './bring-up';
import { kernelAddress, launcherComm } from './connection-files';
import { KernelNotFoundError, KernelRequestError } from './errors';
import { removeHostConnection, type KernelContext } from './kernel-context';
import { toKernelModel, type KernelModel } from './kernel-model';
import { sendLauncherRequest } from './response-address';

/** Signal numbers travel as numbers in EG's listener requests. */
const SIGINT = 2;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function ownKernel(ctx: KernelContext, username: string | undefined, kernelId: string): Promise<KernelRow> {
  const row = await getKernel(ctx.db, kernelId);
  if (!row || (username !== undefined && row.username !== username)) throw new KernelNotFoundError(kernelId);
  return row;
}

async function liveKernel(ctx: KernelContext, username: string | undefined, kernelId: string): Promise<KernelRow> {
  const row = await ownKernel(ctx, username, kernelId);
  if (row.state === 'terminated' || row.state === 'failed') throw new KernelNotFoundError(kernelId);
  return row;
}

/** Waits up to `ms` for the workload to exit on its own (after a shutdown_reply). */
async function exitedWithin(ctx: KernelContext, name: string, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    const s = await ctx.backend.state(name);
    if (s.phase === 'exited' || s.phase === 'missing') return true;
    if (Date.now() >= deadline) return false;
    await sleep(50);
  }
}

/**
 * Shuts a kernel down: shutdown_request, a grace period to exit on its own, then the backend stops
 * what is left. The row leaves `running` first, so the exit is not mistaken for a death.
 */
export async function terminate(ctx: KernelContext, row: KernelRow, opts: { restartable?: boolean; reason?: string } = {}): Promise<void> {
  const { kcfg, registry } = ctx;
  if (!opts.restartable) {
    await updateKernel(ctx.db, row.id, { state: 'terminated', execution_state: 'dead', message: opts.reason ?? null });
  }
  const grace = kcfg.shutdown_grace_seconds * 1000;
  if (row.state === 'running' && !registry.get(row.id)?.isDead) {
    const client = registry.clientFor(row);
    const replied = await client.shutdown({ restart: false, timeoutMs: Math.max(1000, grace) }).then(
      () => true,
      () => false,
    );
    if (replied) await exitedWithin(ctx, row.workload_name, Math.min(grace, 3000));
  }
  // An EG-style launcher keeps its process alive for its listener until told to stop, as EG tells it.
  const comm = launcherComm(row);
  if (comm) await sendLauncherRequest(comm.host, comm.port, { shutdown: 1 }, 2000).catch(() => undefined);
  await ctx.backend.stop(row.workload_name, { graceSeconds: Math.min(kcfg.shutdown_grace_seconds, 5) });
  if (opts.restartable) return;
  await registry.release(row.id);
  await removeHostConnection(ctx, row.id);
}

function movedAway(row: KernelRow, reached: ReachedKernel): boolean {
  const before = kernelAddress(row);
  return before.host !== reached.host || (Object.keys(reached.ports) as (keyof KernelRow['ports'])[]).some((k) => before.ports[k] !== reached.ports[k]);
}

export function kernelOperations(ctx: KernelContext) {
  const { db, registry, log, kcfg, backend } = ctx;
  return {
    async list(username: string | undefined): Promise<KernelModel[]> {
      return (await listKernels(db, { username })).map((r) => toKernelModel(r));
    },

    async get(username: string | undefined, kernelId: string): Promise<KernelModel> {
      return toKernelModel(await liveKernel(ctx, username, kernelId));
    },

    /** The kernel row for a websocket, after the ownership check. */
    async forChannels(username: string | undefined, kernelId: string): Promise<KernelRow> {
      return liveKernel(ctx, username, kernelId);
    },

    /** DELETE: idempotent — a kernel already shut down answers as success. */
    async shutdown(username: string | undefined, kernelId: string): Promise<void> {
      const row = await ownKernel(ctx, username, kernelId);
      if (row.state === 'terminated' || row.state === 'failed') return;
      await terminate(ctx, row);
      log.info('kernel shut down', { kernel_id: row.id, user: row.username });
    },

    async interrupt(username: string | undefined, kernelId: string): Promise<void> {
      const row = await ownKernel(ctx, username, kernelId);
      if (row.state !== 'running') throw new KernelRequestError(`kernel ${kernelId} is ${row.state}, it cannot be interrupted`);
      const comm = launcherComm(row);
      if (row.interrupt_mode === 'message') await registry.clientFor(row).interrupt();
      // An EG-style launcher signals its kernel itself: no signal API needed, as in EG.
      else if (comm) await sendLauncherRequest(comm.host, comm.port, { signum: SIGINT });
      // A backend that cannot signal (kubernetes) declares so: the kernel gets an interrupt_request instead.
      else if (backend.capabilities.signal && backend.signal) await backend.signal(row.workload_name, 'SIGINT');
      else await registry.clientFor(row).interrupt();
    },

    /**
     * Restart: same connection info (EG-style launchers: what they report), new process. Websockets see
     * only the new kernel's own status, as Jupyter Server's manual restart shows it: iopub `restarting`
     * tells clients the kernel died and was restarted automatically, which a REST restart is not.
     */
    async restart(username: string | undefined, kernelId: string): Promise<KernelModel> {
      const row = await liveKernel(ctx, username, kernelId);
      await updateKernel(db, row.id, { state: 'restarting', execution_state: 'restarting' });
      registry.get(row.id)?.pauseHeartbeat();
      // A dead kernel gets no shutdown_request: nothing would answer it, and the queued message would
      // reach (and stop) the new process once it binds the same port.
      await terminate(ctx, row, { restartable: true });
      let reached: ReachedKernel;
      try {
        reached = await bringUp(ctx, row, kcfg.launch_timeout_seconds * 1000);
      } catch (err) {
        await updateKernel(db, row.id, { state: 'dead', execution_state: 'dead', message: (err as Error).message });
        registry.broadcast(row.id, 'dead');
        throw err;
      }
      if (movedAway(row, reached)) {
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
  };
}
