/**
 * The kernel gateway's lifecycle, assembled: launch (quota and fair-share checks, then a queued job
 * that starts the workload and waits for `kernel_info`), list, interrupt, restart, shutdown, death and
 * culling. Backends only run processes; HTTP only calls these functions. Each part lives in its own
 * module and receives the shared `KernelContext`.
 */
import { watchExits } from '../../jobs';
import { createKernelContext, type KernelServiceDeps } from './kernel-context';
import { kernelMaintenance } from './kernel-maintenance';
import { kernelOperations } from './kernel-operations';
import { KERNEL_WORKLOAD_PREFIX } from './kernel-spec';
import { startKernel } from './kernel-start';
import { KERNEL_LAUNCH_JOB, launchJobHandler, type LaunchJobData } from './launch-job';
import { KernelLaunchError } from './errors';
import { kernelRefusalOf } from './refusal';
import { prepareRuntimeRoot } from './runtime-dir';

export { KERNEL_LAUNCH_JOB } from './launch-job';
export type { KernelServiceDeps } from './kernel-context';
export const KERNEL_CULL_JOB = 'kernel.cull';

export function createKernelService(deps: KernelServiceDeps) {
  const ctx = createKernelContext(deps);
  const { queue, backend, kcfg, log } = ctx;
  const operations = kernelOperations(ctx);
  const maintenance = kernelMaintenance(ctx);
  let runtimeReady: Promise<void> | undefined;
  // The runtime root is made (or checked) once, before the first host kernel needs it.
  const ensureRuntimeRoot = (): Promise<void> => (runtimeReady ??= prepareRuntimeRoot(ctx.runtimeRoot).catch((err: unknown) => {
    runtimeReady = undefined;
    throw err;
  }));

  return {
    registry: ctx.registry,
    /** Largest websocket message a client may send on a kernel's channels (`ws`'s maxPayload). */
    maxFrameBytes: kcfg.max_frame_bytes,
    ...operations,
    ...maintenance,

    /** POST /api/kernels. Resolves with the running kernel's model (201), or throws a named error. */
    async start(username: string, body: { name?: unknown; env?: unknown }) {
      if (ctx.hostProcesses) await ensureRuntimeRoot();
      // Timed here, on the API replica that answers the client: request received → kernel answering,
      // or the launch failing (whichever worker ran the launch job).
      const began = performance.now();
      const observe = (outcome: 'started' | 'failed'): void =>
        deps.metrics.kernelStartDuration.observe({ backend: backend.name, outcome }, (performance.now() - began) / 1000);
      try {
        const model = await startKernel(ctx, username, body);
        observe('started');
        return model;
      } catch (err) {
        const refusal = kernelRefusalOf(err);
        if (refusal) deps.metrics.launchesRefused.inc({ kind: 'kernel', ...refusal });
        else if (err instanceof KernelLaunchError) observe('failed');
        throw err;
      }
    },

    /** Registers the launch and cull jobs and the exit watch in this process. */
    async startWorkers(concurrency: number): Promise<() => void> {
      if (ctx.hostProcesses) await ensureRuntimeRoot();
      queue.process<LaunchJobData, void>(KERNEL_LAUNCH_JOB, launchJobHandler(ctx), { concurrency });
      queue.process<Record<string, never>, string[]>(KERNEL_CULL_JOB, async () => maintenance.cull(), { concurrency: 1 });
      if (kcfg.cull_idle_timeout > 0) await queue.repeat(KERNEL_CULL_JOB, kcfg.cull_interval * 1000);
      return watchExits(backend, KERNEL_WORKLOAD_PREFIX, (state) => {
        void maintenance.onWorkloadExit(state).catch((err) => log.error('kernel exit handling failed', { error: err }));
      });
    },

    async close(): Promise<void> {
      await ctx.registry.close();
    },
  };
}

export type KernelService = ReturnType<typeof createKernelService>;
