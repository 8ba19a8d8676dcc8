/**
 * What happens to kernels without a user asking: a workload that ended on its own is marked dead,
 * idle kernels are culled (Enterprise Gateway's settings), and start-up reconciliation compares the
 * backend's kernel workloads (and ipc runtime directories) with the database.
 */
import type { WorkloadState } from '../../backends';
import { getKernel, listKernels, updateKernel } from '../../db';
import { isAlive, listWorkloads, stopQuietly } from '../../jobs';
import type { KernelContext } from './kernel-context';
import { terminate } from './kernel-operations';
import { KERNEL_WORKLOAD_PREFIX, kernelIdOf } from './kernel-spec';
import { kernelRuntimeIds, removeKernelRuntime } from './runtime-dir';

export function kernelMaintenance(ctx: KernelContext) {
  const { db, backend, kcfg, registry, log, queue } = ctx;
  return {
    /** A workload ended outside our control (crash, OOM, kill): mark the kernel dead. */
    async onWorkloadExit(state: WorkloadState): Promise<void> {
      const id = kernelIdOf(state.name);
      if (id === undefined) return;
      const row = await getKernel(db, id);
      if (!row || row.state !== 'running') return;
      await ctx.markDead(id, `kernel process ${state.reason ?? 'exited'}`);
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
        await terminate(ctx, row, { reason: `culled after ${kcfg.cull_idle_timeout} s of inactivity` });
        culled.push(row.id);
        log.info('kernel culled', { kernel_id: row.id, user: row.username, idle_seconds: Math.round((now - new Date(row.last_activity).getTime()) / 1000) });
      }
      return culled;
    },

    /**
     * Start-up reconciliation: kernel workloads nobody records are removed; running records whose
     * workload is gone are marked dead; launches left `starting` by a dead in-process queue fail.
     */
    async reconcile(opts: { startup?: boolean } = {}): Promise<{ removed: string[]; dead: string[] }> {
      const workloads = await listWorkloads(backend, KERNEL_WORKLOAD_PREFIX);
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
      const alive = new Set(workloads.filter(isAlive).map((w) => w.name));
      for (const r of rows) {
        if (r.state === 'running' && !alive.has(r.workload_name)) {
          await ctx.markDead(r.id, 'kernel process disappeared');
          dead.push(r.id);
        } else if (
          r.state === 'starting' &&
          ((opts.startup && queue.kind === 'inprocess') || Date.now() - new Date(r.created_at).getTime() > (Math.max(kcfg.launch_timeout_seconds, kcfg.max_launch_timeout_seconds) + 120) * 1000)
        ) {
          await updateKernel(db, r.id, { state: 'failed', message: 'spawngate restarted during the launch', from: ['starting'] });
          await stopQuietly(backend, r.workload_name);
        }
      }
      if (ctx.hostProcesses) {
        // Directories (ipc sockets, connection file with its key) of kernels no longer live. Each is checked
        // against the database now: a launch's row is committed before its directory is made.
        for (const id of await kernelRuntimeIds(ctx.runtimeRoot)) {
          const row = await getKernel(db, id);
          if (!row || row.state === 'terminated' || row.state === 'failed') await removeKernelRuntime(ctx.runtimeRoot, id);
        }
      }
      return { removed, dead };
    },
  };
}
