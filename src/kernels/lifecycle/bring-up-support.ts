/**
 * What both ways of bringing a kernel up share (spawngate's own launcher in bring-up.ts, EG launchers
 * in launcher-bring-up.ts): where a kernel is reached, the backend's progress for the log and for a
 * timeout's message, the workload's last output, and the readiness probe (`kernel_info`).
 */
import type { WorkloadEvent, WorkloadState } from '../../backends';
import type { KernelRow } from '../../db';
import { isGone, waitForAddress, workloadOutput } from '../../jobs';
import { KernelClient } from '../channels';
import { connectionInfo } from './connection-files';
import { KernelLaunchError } from './errors';
import type { KernelContext } from './kernel-context';
import { buildKernelSpec, type KernelSpecInput } from './kernel-spec';

const OUTPUT_LINES = 15;
export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Where the kernel is reached once up: host (ipc: the socket prefix), ports, transport. */
export interface ReachedKernel {
  host: string;
  ports: KernelRow['ports'];
  transport: 'tcp' | 'ipc';
}

/** "; last output:\n…" with the workload's last lines, or '' when it printed nothing. */
export async function outputOf(ctx: KernelContext, name: string): Promise<string> {
  const lines = await workloadOutput(ctx.backend, name, OUTPUT_LINES);
  return lines.length ? `; last output:\n${lines.join('\n')}` : '';
}

/**
 * The backend's progress (pod events, image pulls) is logged, and the last of it is named when the
 * launch times out: "no address within 60 s" alone hides whether the image was still pulling.
 */
export function launchProgress(ctx: KernelContext, row: KernelRow): { onEvent: (e: WorkloadEvent) => void; lastSeen: () => string } {
  let lastEvent: string | undefined;
  return {
    onEvent(e) {
      if (e.type !== 'progress' || !e.message) return;
      lastEvent = e.message;
      ctx.log.info('kernel launch progress', { kernel_id: row.id, user: row.username, event: e.message });
    },
    lastSeen: () => (lastEvent ? `; last event: ${lastEvent}` : ''),
  };
}

/**
 * Makes (or adopts) the kernel's workload from its row, with the argv and placement of the launcher in use,
 * and waits for the backend to give it an address; fails when it exits first or the deadline passes.
 */
export async function ensureKernelWorkload(
  ctx: KernelContext,
  row: KernelRow,
  launch: Pick<KernelSpecInput, 'argv' | 'placement'>,
  deadline: number,
  timeoutMs: number,
): Promise<{ state: WorkloadState & { host: string }; lastSeen: () => string }> {
  const { backend } = ctx;
  const spec = buildKernelSpec(ctx.config, {
    kernelId: row.id,
    username: row.username,
    experimentName: row.experiment_name,
    limits: row.limits,
    argv: launch.argv,
    env: row.launch.env,
    workingDir: row.launch.workingDir,
    image: row.launch.image,
    ports: row.ports,
    overridesKey: backend.capabilities.overridesKey,
    placement: launch.placement,
  });
  const { onEvent, lastSeen } = launchProgress(ctx, row);
  const state = await waitForAddress(backend, row.workload_name, await backend.ensure(spec, onEvent), deadline, (s) => !!s.host);
  if (isGone(state)) throw new KernelLaunchError(`kernel process ${state.reason ?? 'exited'}${await outputOf(ctx, row.workload_name)}`);
  const { host } = state;
  if (!host) throw new KernelLaunchError(`kernel got no address within ${Math.round(timeoutMs / 1000)} s${lastSeen()}`);
  return { state: { ...state, host }, lastSeen };
}

/** Resolves once the kernel answers kernel_info; rejects when it exits first or the deadline passes. */
export async function probe(ctx: KernelContext, row: KernelRow, reached: ReachedKernel, key: string, deadline: number, timeoutMs: number, lastSeen: () => string): Promise<void> {
  const client = new KernelClient({ connection: connectionInfo(reached.host, reached.ports, key, row.kernel_name, reached.transport), kernelId: row.id, heartbeat: false, logger: ctx.logger });
  const watcher = new AbortController();
  try {
    const exited = (async (): Promise<never> => {
      for (;;) {
        await sleep(100);
        if (watcher.signal.aborted) return new Promise<never>(() => undefined);
        const s = await ctx.backend.state(row.workload_name);
        if (isGone(s)) throw new KernelLaunchError(`kernel process ${s.reason ?? 'exited'} before it answered${await outputOf(ctx, row.workload_name)}`);
      }
    })();
    await Promise.race([
      client.kernelInfo(Math.max(1000, deadline - Date.now())).catch((err: Error) => {
        throw new KernelLaunchError(`kernel did not answer kernel_info within ${Math.round(timeoutMs / 1000)} s (${err.message})${lastSeen()}`);
      }),
      exited,
    ]);
  } finally {
    watcher.abort();
    await client.close({ closeWebsockets: false });
  }
}
