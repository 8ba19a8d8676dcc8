/**
 * The cost of collecting usage, printed: (1) CPU and wall time of one /metrics scrape with 1,000 live
 * kernels (recorded rows, as a stand-in backend leaves them) in 50 experiments and 200 servers, with and
 * without per-user series, beside the same registry without the usage gauges, and the database's own
 * execution time of the two aggregate statements (EXPLAIN ANALYZE); (2) the size on disk of 30 days of
 * usage history for 50 experiments at the default 5-minute interval (usage_samples, with its indexes).
 * Runs on its own database on the local Postgres, dropped at the end.
 *
 *   npx tsx bench/usage/usage.ts [--scrapes 200] [--database-url postgres://root@127.0.0.1:5432/test]
 */
import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import winston from 'winston';
import { createPostgresDb, migrate, recordUsageSample, selectExperimentQuotas, selectLiveUsage, type Db } from '../../src/db';
// The statements a scrape runs, from their module (the db index does not export them).
import { LIVE_USAGE_SQL_FOR_BENCH, QUOTAS_SQL_FOR_BENCH } from '../../src/db/usage-metrics';
import { createMetrics, registerUsageMetrics } from '../../src/metrics';

const arg = (name: string): string | undefined => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);
const scrapes = Number(arg('--scrapes')) || 200;
const adminUrl = arg('--database-url') ?? 'postgres://root@127.0.0.1:5432/test';
const EXPERIMENTS = 50;
const KERNELS = 1000;
const USERS = 400;
const SERVERS = 200;

async function admin(sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

async function seed(db: Db): Promise<void> {
  await db.query(`INSERT INTO experiments (name, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib, gpu_limit)
    SELECT 'exp-' || i, 0.5, 2, 512, 4096, i % 2 FROM generate_series(1, ${EXPERIMENTS}) i`);
  await db.query(`INSERT INTO users (username) SELECT 'user-' || i FROM generate_series(1, ${USERS}) i`);
  await db.query(`INSERT INTO experiment_members (experiment_id, user_id)
    SELECT e.id, u.id FROM experiments e JOIN users u ON (u.id % ${EXPERIMENTS}) = (e.id % ${EXPERIMENTS})`);
  const states = ['running', 'running', 'running', 'starting', 'restarting', 'dead'];
  for (let i = 0; i < KERNELS; i++) {
    const id = randomUUID();
    await db.query(
      `INSERT INTO kernels (id, username, kernel_name, environment, experiment_id, experiment_name, limits, backend, workload_name, state, ports, key_ciphertext)
       SELECT $1, $2, 'python3', 'env', e.id, e.name, $3, 'recording', $4, $5, '{}', 'x' FROM experiments e WHERE e.name = $6`,
      [id, `user-${(i % USERS) + 1}`, JSON.stringify({ cpu_request: 0.5, cpu_limit: 2, memory_request_mib: 512, memory_limit_mib: 4096, gpu_limit: i % 2 }), `sg-krn-${id}`, states[i % states.length], `exp-${(i % EXPERIMENTS) + 1}`],
    );
  }
  // Ended kernels stay in the table; a real site has many more of them than live ones.
  await db.query(`INSERT INTO kernels (id, username, kernel_name, backend, workload_name, state, ports, key_ciphertext)
    SELECT gen_random_uuid(), 'user-' || (i % ${USERS} + 1), 'python3', 'recording', 'sg-krn-old-' || i, 'terminated', '{}', 'x' FROM generate_series(1, 20000) i`);
  await db.query(`INSERT INTO servers (username, server_name, workload_name, backend, profile, state)
    SELECT 'user-' || i, '', 'sg-srv-' || i, 'recording', CASE WHEN i % 3 = 0 THEN 'large' ELSE 'small' END, CASE WHEN i % 10 = 0 THEN 'pending' ELSE 'running' END
      FROM generate_series(1, ${SERVERS}) i`);
  await db.query('ANALYZE');
}

const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

async function timeScrapes(label: string, build: () => ReturnType<typeof createMetrics>['registry']): Promise<void> {
  const registry = build();
  for (let i = 0; i < 10; i++) await registry.metrics(); // warm-up (JIT, pool connections)
  const wall: number[] = [];
  const cpu0 = process.cpuUsage();
  let bytes = 0;
  for (let i = 0; i < scrapes; i++) {
    const t = performance.now();
    bytes = (await registry.metrics()).length;
    wall.push(performance.now() - t);
  }
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000 / scrapes;
  console.log(`${label.padEnd(44)} node CPU ${cpuMs.toFixed(2).padStart(6)} ms/scrape   wall p50 ${pct(wall, 50).toFixed(2).padStart(6)} ms  p95 ${pct(wall, 95).toFixed(2).padStart(6)} ms   body ${(bytes / 1024).toFixed(1)} KiB`);
}

async function explainMs(db: Db, sql: string, params: unknown[]): Promise<number> {
  const rows = await db.query<{ 'QUERY PLAN': Array<{ 'Execution Time': number }> }>(`EXPLAIN (ANALYZE, FORMAT JSON) ${sql}`, params);
  return rows[0]!['QUERY PLAN'][0]!['Execution Time'];
}

async function main(): Promise<void> {
  const name = `spawngate_bench_${randomBytes(5).toString('hex')}`;
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const db = createPostgresDb({ url: url.toString(), max: 4, logger: winston.createLogger({ silent: true }) });
  try {
    await migrate(db);
    await seed(db);
    console.log(`usage collection: ${KERNELS} live kernels (+20,000 ended) in ${EXPERIMENTS} experiments, ${USERS} users, ${SERVERS} servers; ${scrapes} scrapes each, Postgres ${(await db.query<{ v: string }>("SELECT current_setting('server_version') AS v"))[0]!.v} on this machine`);
    const source = { live: (o: { perUser: boolean }) => selectLiveUsage(db, o), quotas: () => selectExperimentQuotas(db) };
    await timeScrapes('without usage gauges (default metrics only)', () => createMetrics({ defaultMetrics: true }).registry);
    await timeScrapes('with usage gauges, per_user off', () => {
      const m = createMetrics({ defaultMetrics: true });
      registerUsageMetrics(m.registry, source, { perUser: false, maxKernelsPerExperiment: 40 });
      return m.registry;
    });
    await timeScrapes('with usage gauges, per_user on', () => {
      const m = createMetrics({ defaultMetrics: true });
      registerUsageMetrics(m.registry, source, { perUser: true, maxKernelsPerExperiment: 40 });
      return m.registry;
    });
    const live: number[] = [];
    const liveUser: number[] = [];
    const quotas: number[] = [];
    for (let i = 0; i < 20; i++) {
      live.push(await explainMs(db, LIVE_USAGE_SQL_FOR_BENCH, [false, ['starting', 'running', 'restarting', 'dead'], ['pending', 'running', 'stopping']]));
      liveUser.push(await explainMs(db, LIVE_USAGE_SQL_FOR_BENCH, [true, ['starting', 'running', 'restarting', 'dead'], ['pending', 'running', 'stopping']]));
      quotas.push(await explainMs(db, QUOTAS_SQL_FOR_BENCH, []));
    }
    console.log(`Postgres execution time (EXPLAIN ANALYZE, median of 20): live usage ${pct(live, 50).toFixed(2)} ms, with per-user grouping ${pct(liveUser, 50).toFixed(2)} ms, quotas ${pct(quotas, 50).toFixed(2)} ms`);

    // (2) 30 days of history for 50 experiments at 300 s: 8,640 intervals × 50 rows, as the sampler writes them.
    await db.query('TRUNCATE usage_samples');
    const t = performance.now();
    // One day per statement (the pool's statement timeout is for a service, not for bulk loads).
    for (let d = 0; d < 30; d++) {
      await db.query(`INSERT INTO usage_samples (sampled_at, experiment, kernels, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib, gpu_limit)
        SELECT date_bin(interval '300 seconds', now(), TIMESTAMPTZ '2000-01-01 00:00:00+00') - make_interval(secs => 300 * s), 'exp-' || e,
               (s + e) % 40, ((s + e) % 40) * 0.5, ((s + e) % 40) * 2, ((s + e) % 40) * 512, ((s + e) % 40) * 4096, (s + e) % 3
          FROM generate_series(${d * 288}, ${d * 288 + 287}) s, generate_series(1, ${EXPERIMENTS}) e`);
    }
    await db.query('VACUUM ANALYZE usage_samples');
    const [size] = await db.query<{ rows: string; total: string; heap: string; idx: string }>(
      `SELECT (SELECT count(*) FROM usage_samples)::text AS rows, pg_total_relation_size('usage_samples')::text AS total,
              pg_relation_size('usage_samples')::text AS heap, pg_indexes_size('usage_samples')::text AS idx`,
    );
    const mib = (b: string): string => (Number(b) / 1024 / 1024).toFixed(1);
    console.log(`usage history, 30 days × ${EXPERIMENTS} experiments at 300 s: ${Number(size!.rows).toLocaleString('en')} rows, pg_total_relation_size ${mib(size!.total)} MiB (table ${mib(size!.heap)} MiB, indexes ${mib(size!.idx)} MiB), ${(Number(size!.total) / Number(size!.rows)).toFixed(0)} bytes/row; inserted in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    const day: number[] = [];
    for (let i = 0; i < 20; i++) day.push(await explainMs(db, `SELECT * FROM usage_samples WHERE sampled_at >= now() - interval '24 hours' ORDER BY sampled_at, experiment`, []));
    const sampleT = performance.now();
    await recordUsageSample(db, { intervalSeconds: 300, retentionDays: 30 });
    console.log(`reading the last 24 h (the admin page's chart): ${pct(day, 50).toFixed(2)} ms in Postgres (median of 20); one sample + prune: ${(performance.now() - sampleT).toFixed(1)} ms`);
  } finally {
    await db.close();
    await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
