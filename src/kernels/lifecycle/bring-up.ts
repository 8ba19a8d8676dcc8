/**
 * Bringing one kernel up: its spec, the backend call, the wait for an address, and the readiness probe
 * (`kernel_info`), failing as soon as the workload exits. Used by the launch job and by restarts.
 */
import type { WorkloadEvent } from '../../backends';
import { updateKernel, type KernelRow } from '../../db';
import { isGone, hostProcessEnv, waitForAddress, workloadOutput } from '../../jobs';
import { KernelClient } from '../channels';
import { connectionInfo, reachedPorts, REACHED_PORTS_KEY } from './connection-files';
import { KernelLaunchError } from './errors';
import { writeHostConnection, type KernelContext } from './kernel-context';
import { buildKernelSpec } from './kernel-spec';
import { ipcSocketPrefix } from './runtime-dir';

const OUTPUT_LINES = 15;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function outputOf(ctx: KernelContext, name: string): Promise<string> {
  const lines = await workloadOutput(ctx.backend, name, OUTPUT_LINES);
  return lines.length ? `; last output:\n${lines.join('\n')}` : '';
}

/** Where the kernel is reached once up: host (ipc: the socket prefix), ports, transport. */
export interface ReachedKernel {
  host: string;
  ports: KernelRow['ports'];
  transport: 'tcp' | 'ipc';
}

/**
 * Starts (or adopts) the workload and waits until the kernel answers kernel_info, failing as soon as
 * the workload exits. Records and returns where the kernel is reached.
 */
export async function bringUp(ctx: KernelContext, row: KernelRow, timeoutMs: number): Promise<ReachedKernel> {
  const { backend, log, db } = ctx;
  const key = ctx.secrets.open(row.key_ciphertext);
  const host = ctx.hostProcesses ? await writeHostConnection(ctx, row) : undefined;
  const spec = buildKernelSpec(ctx.config, {
    kernelId: row.id,
    username: row.username,
    experimentName: row.experiment_name,
    limits: row.limits,
    argv: row.launch.argv,
    env: row.launch.env,
    workingDir: row.launch.workingDir,
    image: row.launch.image,
    ports: row.ports,
    placement: host
      ? { hostProcesses: true, connectionFile: host.file, hostEnv: hostProcessEnv() }
      : { hostProcesses: false, launcher: ctx.kcfg.launcher, connectionInfo: connectionInfo('0.0.0.0', row.ports, key, row.kernel_name) },
  });
  // The backend's progress (pod events, image pulls) is logged, and the last of it is named when the
  // launch times out: "no address within 60 s" alone hides whether the image was still pulling.
  let lastEvent: string | undefined;
  const onEvent = (e: WorkloadEvent): void => {
    if (e.type !== 'progress' || !e.message) return;
    lastEvent = e.message;
    log.info('kernel launch progress', { kernel_id: row.id, user: row.username, event: e.message });
  };
  const lastSeen = (): string => (lastEvent ? `; last event: ${lastEvent}` : '');
  const deadline = Date.now() + timeoutMs;
  const state = await waitForAddress(backend, row.workload_name, await backend.ensure(spec, onEvent), deadline, (s) => !!s.host);
  if (isGone(state)) throw new KernelLaunchError(`kernel process ${state.reason ?? 'exited'}${await outputOf(ctx, row.workload_name)}`);
  if (!state.host) throw new KernelLaunchError(`kernel got no address within ${Math.round(timeoutMs / 1000)} s${lastSeen()}`);
  // An ipc kernel is reached at its sockets; published container ports at the host ports the backend reports.
  const reached: ReachedKernel = ctx.ipc
    ? { host: ipcSocketPrefix(ctx.runtimeRoot, row.id), ports: row.ports, transport: 'ipc' }
    : { host: state.host, ports: reachedPorts(row.ports, state.ports), transport: 'tcp' };
  await updateKernel(db, row.id, { host: reached.host, backend_ref: { ...(state.ref ?? {}), ...(host?.ref ?? {}), [REACHED_PORTS_KEY]: reached.ports } });
  await probe(ctx, row, reached, key, deadline, timeoutMs, lastSeen);
  return reached;
}

/** Resolves once the kernel answers kernel_info; rejects when it exits first or the deadline passes. */
async function probe(ctx: KernelContext, row: KernelRow, reached: ReachedKernel, key: string, deadline: number, timeoutMs: number, lastSeen: () => string): Promise<void> {
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
