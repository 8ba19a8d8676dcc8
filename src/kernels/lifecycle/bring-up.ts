/**
 * Bringing one kernel up: its spec, the backend call, the wait for an address, and the readiness probe
 * (`kernel_info`), failing as soon as the workload exits. Used by the launch job and by restarts.
 * An EG-style launcher (`{response_address}` in argv) reports where it is: launcher-bring-up.ts.
 */
import { updateKernel, type KernelRow } from '../../db';
import { hostProcessEnv } from '../../jobs';
import { usesResponseAddress } from './argv-placeholders';
import { ensureKernelWorkload, probe, type ReachedKernel } from './bring-up-support';
import { connectionInfo, reachedPorts, REACHED_PORTS_KEY } from './connection-files';
import { writeHostConnection, type KernelContext } from './kernel-context';
import { bringUpLauncher } from './launcher-bring-up';
import { ipcSocketPrefix } from './runtime-dir';

export type { ReachedKernel } from './bring-up-support';

export interface BringUpOptions {
  /**
   * The launch job's retry: a workload of an earlier attempt whose EG launcher already reported is
   * adopted (its report is in the row), one that had not is replaced. Restarts start afresh.
   */
  retry?: boolean;
}

/**
 * Starts (or adopts) the workload and waits until the kernel answers kernel_info, failing as soon as
 * the workload exits. Records and returns where the kernel is reached.
 */
export async function bringUp(ctx: KernelContext, row: KernelRow, timeoutMs: number, opts: BringUpOptions = {}): Promise<ReachedKernel> {
  if (usesResponseAddress(row.launch.argv)) return bringUpLauncher(ctx, row, timeoutMs, opts.retry ?? false);
  const { db } = ctx;
  const key = ctx.secrets.open(row.key_ciphertext);
  const host = ctx.hostProcesses ? await writeHostConnection(ctx, row) : undefined;
  const deadline = Date.now() + timeoutMs;
  const { state, lastSeen } = await ensureKernelWorkload(
    ctx,
    row,
    {
      argv: row.launch.argv,
      placement: host
        ? { hostProcesses: true, connectionFile: host.file, hostEnv: hostProcessEnv() }
        : { hostProcesses: false, launcher: ctx.kcfg.launcher, connectionInfo: connectionInfo('0.0.0.0', row.ports, key, row.kernel_name) },
    },
    deadline,
    timeoutMs,
  );
  // An ipc kernel is reached at its sockets; published container ports at the host ports the backend reports.
  const reached: ReachedKernel = ctx.ipc
    ? { host: ipcSocketPrefix(ctx.runtimeRoot, row.id), ports: row.ports, transport: 'ipc' }
    : { host: state.host, ports: reachedPorts(row.ports, state.ports), transport: 'tcp' };
  const ref = { ...(state.ref ?? {}), ...(host?.ref ?? {}), [REACHED_PORTS_KEY]: reached.ports };
  await updateKernel(db, row.id, { host: reached.host, backend_ref: ref });
  await probe(ctx, row, reached, key, deadline, timeoutMs, lastSeen);
  return reached;
}
