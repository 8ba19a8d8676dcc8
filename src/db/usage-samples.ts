/** Usage history (table usage_samples, migration 016): one sample per experiment per interval, pruned by age. */
import { LIVE_KERNEL_STATES } from './kernels';
import type { ReservedResources } from './admin/usage';
import type { Queryable } from './types';

export interface UsageSample extends ReservedResources {
  sampled_at: string;
  experiment: string;
}

// Every experiment gets a row (zero when idle, so a chart shows the drop), plus '' for kernels without
// one when there are any. Same join and live states as the experiment_usage view behind `admin usage`.
const SAMPLE_SQL = `
INSERT INTO usage_samples (sampled_at, experiment, kernels, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib, gpu_limit)
SELECT date_bin(make_interval(secs => $1), now(), TIMESTAMPTZ '2000-01-01 00:00:00+00'),
       COALESCE(e.name, ''),
       count(k.id),
       COALESCE(sum((k.limits->>'cpu_request')::numeric), 0),
       COALESCE(sum((k.limits->>'cpu_limit')::numeric), 0),
       COALESCE(sum((k.limits->>'memory_request_mib')::bigint), 0),
       COALESCE(sum((k.limits->>'memory_limit_mib')::bigint), 0),
       COALESCE(sum((k.limits->>'gpu_limit')::int), 0)
  FROM experiments e
  FULL JOIN (SELECT * FROM kernels WHERE state = ANY($2::text[])) k ON k.experiment_id = e.id
 GROUP BY COALESCE(e.name, '')
ON CONFLICT (sampled_at, experiment) DO NOTHING`;

/**
 * Records the current interval's sample (idempotent: a second call in the same interval, from any
 * replica, adds nothing) and deletes samples older than `retentionDays`. Returns the rows inserted.
 */
export async function recordUsageSample(q: Queryable, opts: { intervalSeconds: number; retentionDays: number }): Promise<number> {
  const inserted = await q.query<{ n: number }>(`WITH ins AS (${SAMPLE_SQL} RETURNING 1) SELECT count(*)::int AS n FROM ins`, [opts.intervalSeconds, LIVE_KERNEL_STATES]);
  await q.query('DELETE FROM usage_samples WHERE sampled_at < now() - make_interval(days => $1)', [opts.retentionDays]);
  return inserted[0]?.n ?? 0;
}

/** Samples of the last `hours` hours, oldest first, optionally of one experiment. */
export async function selectUsageSamples(q: Queryable, opts: { hours: number; experiment?: string }): Promise<UsageSample[]> {
  const rows = await q.query<Record<keyof UsageSample, string | number | Date>>(
    `SELECT sampled_at, experiment, kernels, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib, gpu_limit
       FROM usage_samples
      WHERE sampled_at >= now() - make_interval(hours => $1) AND ($2::text IS NULL OR experiment = $2)
      ORDER BY sampled_at, experiment`,
    [opts.hours, opts.experiment ?? null],
  );
  return rows.map((r) => ({
    sampled_at: new Date(r.sampled_at).toISOString(),
    experiment: String(r.experiment),
    kernels: Number(r.kernels),
    cpu_request: Number(r.cpu_request),
    cpu_limit: Number(r.cpu_limit),
    memory_request_mib: Number(r.memory_request_mib),
    memory_limit_mib: Number(r.memory_limit_mib),
    gpu_limit: Number(r.gpu_limit),
  }));
}
