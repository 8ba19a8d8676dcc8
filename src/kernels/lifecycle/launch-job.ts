/**
 * The `kernel.launch` job: brings the recorded kernel up, relaunching on fresh ports when a TCP host
 * kernel lost a port race, and records the outcome (row state, launch history) either way.
 */
import { PermanentBackendError } from '../../backends';
import { getKernel, livePorts, recordLaunch, updateKernel, updateKernelPorts, type KernelRow } from '../../db';
import { portWasTaken, stopQuietly, UnrecoverableJobError, type JobInfo } from '../../jobs';
import { bringUp } from './bring-up';
import { KernelLaunchError } from './errors';
import { removeHostConnection, type KernelContext } from './kernel-context';

export const KERNEL_LAUNCH_JOB = 'kernel.launch';
const PORT_ATTEMPTS = 3;

export interface LaunchJobData {
  kernelId: string;
  launchTimeoutMs: number;
}

function launchRecord(row: KernelRow) {
  return { kernelId: row.id, username: row.username, kernelName: row.kernel_name, environment: row.environment, experimentName: row.experiment_name, limits: row.limits };
}

export function launchJobHandler(ctx: KernelContext) {
  const { db, backend, log } = ctx;
  return async function handleLaunch(job: JobInfo<LaunchJobData>): Promise<void> {
    let row = await getKernel(db, job.data.kernelId);
    if (!row || row.state !== 'starting') return;
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          await bringUp(ctx, row, job.data.launchTimeoutMs, { retry: true });
          break;
        } catch (err) {
          // Another process took a port between our choice and the kernel's bind: new ports, again.
          // (ipc and container kernels have ports of their own.)
          const tcpHost = ctx.hostProcesses && !ctx.ipc;
          if (!(tcpHost && attempt < PORT_ATTEMPTS && portWasTaken((err as Error).message))) throw err;
          await backend.stop(row.workload_name, { graceSeconds: 1 });
          const fresh = await ctx.ports.allocate(await livePorts(db, backend.name));
          await updateKernelPorts(db, row.id, fresh);
          ctx.ports.release(fresh);
          log.info('kernel port taken, relaunching with new ports', { kernel_id: row.id, attempt });
          row = (await getKernel(db, row.id)) ?? row;
        }
      }
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      await updateKernel(db, row.id, { state: 'failed', execution_state: 'dead', message, from: ['starting'] });
      await stopQuietly(backend, row.workload_name);
      await removeHostConnection(ctx, row.id);
      await recordLaunch(db, { ...launchRecord(row), outcome: 'failed', message });
      log.warn('kernel launch failed', { kernel_id: row.id, user: row.username, kernel: row.kernel_name, reason: message.split('\n')[0] });
      if (err instanceof KernelLaunchError || err instanceof PermanentBackendError) throw new UnrecoverableJobError(message);
      throw err;
    }
    const running = await updateKernel(db, row.id, { state: 'running', execution_state: 'idle', message: null, from: ['starting'] });
    if (!running) {
      // Shut down while launching: do not leave the workload behind.
      await stopQuietly(backend, row.workload_name);
      return;
    }
    await recordLaunch(db, { ...launchRecord(row), outcome: 'started' });
    log.info('kernel started', { kernel_id: row.id, user: row.username, kernel: row.kernel_name, experiment: row.experiment_name });
  };
}
