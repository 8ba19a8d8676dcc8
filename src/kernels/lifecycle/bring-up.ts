/**
 * Bringing one kernel up: its spec, the backend call, the wait for an address, and the readiness probe
 * (`kernel_info`), failing as soon as the workload exits. Used by the launch job and by restarts.
 * An EG-style launcher (`{response_address}` in argv) is reached where its handshake says.
 */
import type { WorkloadEvent } from '../../backends';
import net from 'node:net';
import { updateKernel, updateKernelKey, type KernelRow } from '../../db';
import { isGone, hostProcessEnv, waitForAddress, workloadOutput } from '../../jobs';
import { KernelClient } from '../channels';
import { substituteArgv, usesResponseAddress } from './argv-placeholders';
import { connectionInfo, LAUNCHER_COMM_KEY, reachedPorts, REACHED_PORTS_KEY } from './connection-files';
import { KernelLaunchError } from './errors';
import { kernelOwner, writeHostConnection, type KernelContext } from './kernel-context';
import { buildKernelSpec } from './kernel-spec';
import { ResponseListener, type LauncherReport } from './response-address';
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
  let key = ctx.secrets.open(row.key_ciphertext);
  const host = ctx.hostProcesses ? await writeHostConnection(ctx, row) : undefined;
  // An EG-style launcher reports its own ports and key to a response address made for this launch.
  const keys = ctx.hostProcesses && usesResponseAddress(row.launch.argv) ? await ctx.responseKeys() : undefined;
  const listener = keys ? await ResponseListener.open(keys, row.id, '127.0.0.1', { peerUid: (await kernelOwner(ctx, row.username)).uid }) : undefined;
  try {
    const argv = listener && keys ? substituteArgv(row.launch.argv, { response_address: listener.address, public_key: keys.publicKey }) : row.launch.argv;
    const spec = buildKernelSpec(ctx.config, {
      kernelId: row.id,
      username: row.username,
      experimentName: row.experiment_name,
      limits: row.limits,
      argv,
      env: row.launch.env,
      workingDir: row.launch.workingDir,
      image: row.launch.image,
      ports: row.ports,
      overridesKey: backend.capabilities.overridesKey,
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
    let reached: ReachedKernel;
    let ref: Record<string, unknown>;
    if (listener) {
      const report = await launcherReport(ctx, row, listener, deadline, timeoutMs);
      const at = report.ip && report.ip !== '0.0.0.0' ? report.ip : net.isIP(state.host) ? state.host : '127.0.0.1';
      reached = { host: at, ports: report.ports, transport: 'tcp' };
      key = report.key;
      await updateKernelKey(db, row.id, ctx.secrets.seal(key));
      ref = { ...(state.ref ?? {}), [REACHED_PORTS_KEY]: reached.ports, ...(report.commPort > 0 ? { [LAUNCHER_COMM_KEY]: { host: at, port: report.commPort } } : {}) };
    } else {
      // An ipc kernel is reached at its sockets; published container ports at the host ports the backend reports.
      reached = ctx.ipc
        ? { host: ipcSocketPrefix(ctx.runtimeRoot, row.id), ports: row.ports, transport: 'ipc' }
        : { host: state.host, ports: reachedPorts(row.ports, state.ports), transport: 'tcp' };
      ref = { ...(state.ref ?? {}), ...(host?.ref ?? {}), [REACHED_PORTS_KEY]: reached.ports };
    }
    await updateKernel(db, row.id, { host: reached.host, backend_ref: ref });
    await probe(ctx, row, reached, key, deadline, timeoutMs, lastSeen);
    return reached;
  } finally {
    await listener?.close();
  }
}

/** Waits for the launcher's connection info; fails when the workload exits first or the deadline passes. */
async function launcherReport(ctx: KernelContext, row: KernelRow, listener: ResponseListener, deadline: number, timeoutMs: number): Promise<LauncherReport> {
  let settled = false;
  const exited = (async (): Promise<never> => {
    for (;;) {
      await sleep(100);
      if (settled) return new Promise<never>(() => undefined);
      const s = await ctx.backend.state(row.workload_name);
      if (isGone(s)) throw new KernelLaunchError(`kernel launcher ${s.reason ?? 'exited'} before it sent its connection info${await outputOf(ctx, row.workload_name)}`);
      if (Date.now() >= deadline) {
        const why = listener.rejection ? ` (a payload was refused: ${listener.rejection})` : '';
        throw new KernelLaunchError(`kernel launcher sent no connection info within ${Math.round(timeoutMs / 1000)} s${why}`);
      }
    }
  })();
  try {
    return await Promise.race([listener.report, exited]);
  } finally {
    settled = true;
  }
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
