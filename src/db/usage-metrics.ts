/**
 * The two aggregate reads behind the usage gauges of `/metrics` (src/metrics/usage-collector.ts): what
 * live kernels and servers hold right now, and each experiment's quota. Computed at scrape time from
 * the database, so every API replica exports the same DB-wide figures and none can drift.
 */
import { LIVE_KERNEL_STATES } from './kernels';
import type { Queryable } from './types';

/** Server states that hold a workload (or are about to): the ones fair-share limits count. */
export const LIVE_SERVER_STATES = ['pending', 'running', 'stopping'] as const;

export interface LiveUsageRow {
  kind: 'kernel' | 'server';
  /** Experiment of a kernel ('' for a kernel without one: unregistered environment on a default profile; always '' for servers). */
  experiment: string;
  /** Profile of a server ('' for kernels). */
  profile: string;
  state: string;
  /** Set only when asked for per-user rows. */
  username: string | null;
  count: number;
  cpu_request: number;
  cpu_limit: number;
  memory_request_mib: number;
  memory_limit_mib: number;
  gpu_limit: number;
}

type Numeric = number | string | null;
interface RawLiveRow {
  kind: 'kernel' | 'server';
  experiment: string;
  profile: string;
  state: string;
  username: string | null;
  count: Numeric;
  cpu_request: Numeric;
  cpu_limit: Numeric;
  memory_request_mib: Numeric;
  memory_limit_mib: Numeric;
  gpu_limit: Numeric;
}

// The experiment is taken through experiment_id (as the experiment_usage view does), so a renamed
// experiment's kernels count under its new name, the same as `spawngate admin usage` shows.
const LIVE_USAGE_SQL = `
WITH live AS (
  SELECT 'kernel' AS kind, k.username, COALESCE(e.name, '') AS experiment, '' AS profile, k.state, k.limits
    FROM kernels k LEFT JOIN experiments e ON e.id = k.experiment_id
   WHERE k.state = ANY($2::text[])
  UNION ALL
  SELECT 'server', s.username, '', COALESCE(s.profile, ''), s.state, '{}'::jsonb
    FROM servers s
   WHERE s.state = ANY($3::text[])
)
SELECT kind, experiment, profile, state,
       CASE WHEN $1::boolean THEN username END AS username,
       count(*) AS count,
       COALESCE(sum((limits->>'cpu_request')::numeric), 0) AS cpu_request,
       COALESCE(sum((limits->>'cpu_limit')::numeric), 0) AS cpu_limit,
       COALESCE(sum((limits->>'memory_request_mib')::bigint), 0) AS memory_request_mib,
       COALESCE(sum((limits->>'memory_limit_mib')::bigint), 0) AS memory_limit_mib,
       COALESCE(sum((limits->>'gpu_limit')::bigint), 0) AS gpu_limit
  FROM live
 GROUP BY kind, experiment, profile, state, CASE WHEN $1::boolean THEN username END`;

/** The statements themselves, for bench/usage/usage.ts (EXPLAIN ANALYZE of exactly what a scrape runs). */
export const LIVE_USAGE_SQL_FOR_BENCH = LIVE_USAGE_SQL;

/**
 * Live kernels and servers grouped by kind, experiment, profile and state (and user when `perUser`),
 * with the resources kernels reserved at launch summed. One statement.
 */
export async function selectLiveUsage(q: Queryable, opts: { perUser: boolean }): Promise<LiveUsageRow[]> {
  const rows = await q.query<RawLiveRow>(LIVE_USAGE_SQL, [opts.perUser, LIVE_KERNEL_STATES, LIVE_SERVER_STATES]);
  // NUMERIC and BIGINT arrive as strings from pg.
  return rows.map((r) => ({
    kind: r.kind,
    experiment: r.experiment,
    profile: r.profile,
    state: r.state,
    username: r.username,
    count: Number(r.count),
    cpu_request: Number(r.cpu_request),
    cpu_limit: Number(r.cpu_limit),
    memory_request_mib: Number(r.memory_request_mib),
    memory_limit_mib: Number(r.memory_limit_mib),
    gpu_limit: Number(r.gpu_limit),
  }));
}

export interface ExperimentQuotaRow {
  experiment: string;
  active: boolean;
  members: number;
  /** Per kernel, cores. */
  cpu_request: number;
  cpu_limit: number;
  /** Per kernel, MiB. */
  memory_request_mib: number;
  memory_limit_mib: number;
  gpu_limit: number;
}

const QUOTAS_SQL = `
SELECT e.name, e.active, e.cpu_request, e.cpu_limit, e.memory_request_mib, e.memory_limit_mib, e.gpu_limit,
       (SELECT count(*) FROM experiment_members m WHERE m.experiment_id = e.id) AS members
  FROM experiments e
 ORDER BY e.name`;
export const QUOTAS_SQL_FOR_BENCH = QUOTAS_SQL;

/** Every experiment's per-kernel quota, active flag and member count. One statement. */
export async function selectExperimentQuotas(q: Queryable): Promise<ExperimentQuotaRow[]> {
  const rows = await q.query<{ name: string; active: boolean; members: Numeric; cpu_request: Numeric; cpu_limit: Numeric; memory_request_mib: Numeric; memory_limit_mib: Numeric; gpu_limit: Numeric }>(QUOTAS_SQL);
  return rows.map((r) => ({
    experiment: r.name,
    active: r.active,
    members: Number(r.members),
    cpu_request: Number(r.cpu_request),
    cpu_limit: Number(r.cpu_limit),
    memory_request_mib: Number(r.memory_request_mib),
    memory_limit_mib: Number(r.memory_limit_mib),
    gpu_limit: Number(r.gpu_limit),
  }));
}
