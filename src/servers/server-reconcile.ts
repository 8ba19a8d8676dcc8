/**
 * Server reconciliation: compares backend reality with the database — removes workloads nobody
 * records, closes records whose workload is gone, re-queues stops that were in flight. Safe to run on
 * every replica.
 */
import { listActiveServers, revokeServerTokens, transitionServer } from '../db';
import { isAlive, listWorkloads, stopQuietly } from '../jobs';
import { SERVER_WORKLOAD_PREFIX } from '../profiles';
import type { ServerContext } from './server-context';

export async function reconcileServers(
  ctx: ServerContext,
  requestStop: (username: string, serverName: string) => Promise<unknown>,
  opts: { startup?: boolean } = {},
): Promise<{ removed: string[]; closed: number[]; adopted: number[] }> {
  const { db, backend, queue, config, log } = ctx;
  const workloads = await listWorkloads(backend, SERVER_WORKLOAD_PREFIX);
  const byName = new Map(workloads.map((w) => [w.name, w]));
  const active = await listActiveServers(db);
  const known = new Set(active.map((r) => r.workload_name));
  const removed: string[] = [];
  const closed: number[] = [];
  const adopted: number[] = [];
  for (const w of workloads) {
    if (!known.has(w.name) && (isAlive(w) || w.phase === 'exited')) {
      await backend.stop(w.name, { graceSeconds: 2 });
      removed.push(w.name);
    }
  }
  // Outside start-up a pending row normally has its start job running right now; it is only
  // abandoned once it is well past any start deadline.
  const abandonedBefore = Date.now() - (config.env.SPAWNGATE_START_TIMEOUT + 60) * 1000;
  for (const row of active) {
    if (!opts.startup && row.state === 'pending' && row.requested_at.getTime() > abandonedBefore) continue;
    const w = byName.get(row.workload_name);
    const alive = w !== undefined && isAlive(w);
    if (row.state === 'stopping') {
      await requestStop(row.username, row.server_name);
    } else if (alive && row.state === 'running') {
      adopted.push(row.id);
    } else if (alive && row.state === 'pending' && (queue.kind === 'inprocess' || !opts.startup)) {
      // The start job died with the previous process; the workload exists, so stop it cleanly and let
      // the hub (which saw no ready server) retry.
      await backend.stop(row.workload_name, { graceSeconds: 2 });
      await ctx.fail(row, 'spawngate restarted while this server was starting; start it again');
      closed.push(row.id);
    } else if (!alive && (row.state === 'running' || queue.kind === 'inprocess' || !opts.startup)) {
      const output = await ctx.outputOf(row.workload_name);
      const message = row.state === 'running' ? 'server disappeared while spawngate was down' : 'spawngate restarted while this server was starting; start it again';
      await transitionServer(db, row.id, row.generation, ['pending', 'running'], 'failed', { message, exitCode: w?.exitCode ?? 1, lastOutput: output, url: null });
      await revokeServerTokens(db, row.id);
      if (w) await stopQuietly(backend, row.workload_name);
      closed.push(row.id);
    }
  }
  if (removed.length || closed.length || adopted.length) log.info('reconciled servers', { removed: removed.length, closed: closed.length, adopted: adopted.length });
  return { removed, closed, adopted };
}
