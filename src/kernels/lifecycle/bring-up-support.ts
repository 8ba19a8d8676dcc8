/**
 * What both ways of bringing a kernel up share (spawngate's own launcher in bring-up.ts, EG launchers
 * in launcher-bring-up.ts): where a kernel is reached, the backend's progress for the log and for a
 * timeout's message, the workload's last output, and the readiness probe (`kernel_info`).
 */
import type { WorkloadEvent } from '../../backends';
import type { KernelRow } from '../../db';
import { isGone, workloadOutput } from '../../jobs';
import { KernelClient } from '../channels';
import { connectionInfo } from './connection-files';
import { KernelLaunchError } from './errors';
import type { KernelContext } from './kernel-context';

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
