/**
 * The usage series of /metrics over a real service on Postgres with the local backend (real ipykernel
 * processes): kernels and reserved resources per experiment and per user appear after a launch, match
 * `spawngate admin usage` for the same moment and vanish after the shutdown; each refusal counts under
 * its reason; kernel start durations are observed per backend; servers count by profile; a database
 * that cannot be read empties the usage gauges instead of failing the scrape.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { Registry } from 'prom-client';
import { runAdmin } from '../../src/cli/admin';
import { createService, type Service } from '../../src/compose';
import { loadConfig, profileSchema } from '../../src/config';
import { mintToken } from '../../src/db';
import { REFUSAL_REASONS, registerUsageMetrics } from '../../src/metrics';
import { captureLogger, createTestPostgres, type TestPostgres } from '../db/helpers';
import { Exposition } from '../support/prometheus';

jest.setTimeout(180_000);

const MIB = 1024 * 1024;
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-h16-metrics-'));
const homes = path.join(root, 'homes');
// A user name with non-ASCII letters and punctuation a label value must carry intact.
const ODD = 'zoë.o-brien@lab';
for (const user of ['alice', 'bob', 'carol', ODD]) {
  for (const env of ['tf', 'dormant', 'nowhere']) {
    const dir = path.join(homes, user, '.conda', 'envs', env, 'share', 'jupyter', 'kernels', 'python3');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'kernel.json'), JSON.stringify({ argv: ['/usr/bin/python3', '-m', 'ipykernel_launcher', '-f', '{connection_file}'], display_name: env, language: 'python' }));
  }
}
fs.writeFileSync(
  path.join(root, 'config.yaml'),
  `kernels:
  max_kernels_per_user: 1
  max_kernels_per_experiment: 5
  denied_users: [carol]
metrics:
  per_user: true
servers:
  max_servers_per_user: 1
`,
);

let pg: TestPostgres;
let service: Service;
const tokens: Record<string, string> = {};
let dbEnv: NodeJS.ProcessEnv;

beforeAll(async () => {
  pg = await createTestPostgres();
  dbEnv = { SPAWNGATE_DATABASE_URL: pg.url, SPAWNGATE_DATA_DIR: path.join(root, 'data') };
  service = await createService(
    loadConfig({ ...dbEnv, SPAWNGATE_HOME_ROOT: homes, SPAWNGATE_LOCAL_SHARED_IDENTITY: '1', SPAWNGATE_CONFIG: path.join(root, 'config.yaml'), SPAWNGATE_PORT: '0' }),
    { logger: captureLogger().logger },
  );
  await service.db.query(
    `INSERT INTO users (username) VALUES ('alice'), ('bob'), ('carol');
     INSERT INTO experiments (name, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib, gpu_limit) VALUES ('genomics', 0.25, 1, 256, 1024, 0);
     INSERT INTO experiments (name, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib, gpu_limit, active) VALUES ('dormant-lab', 1, 2, 512, 2048, 1, false);
     INSERT INTO environments (name, experiment_id) SELECT 'tf', id FROM experiments WHERE name = 'genomics';
     INSERT INTO environments (name, experiment_id) SELECT 'dormant', id FROM experiments WHERE name = 'dormant-lab';`,
  );
  await service.db.query('INSERT INTO users (username) VALUES ($1)', [ODD]);
  await service.db.query(
    `INSERT INTO experiment_members (experiment_id, user_id)
       SELECT e.id, u.id FROM experiments e, users u WHERE e.name = 'genomics' AND u.username IN ('alice', 'carol', $1)`,
    [ODD],
  );
  for (const u of ['alice', 'bob', 'carol', ODD]) tokens[u] = await mintToken(service.db, { username: u, kind: 'cli' });
});

afterAll(async () => {
  for (const k of await service.kernels.list(undefined)) await service.kernels.shutdown(undefined, k.id);
  await service?.close();
  await pg?.drop();
});

const scrape = async (): Promise<Exposition> => {
  const res = await request(service.app!).get('/metrics');
  expect(res.status).toBe(200);
  return new Exposition(res.text);
};
const launch = (user: string, env = 'tf') =>
  request(service.app!).post('/api/kernels').set({ Authorization: `token ${tokens[user]}` }).send({ name: `conda-env-${env}-python3` });
const refused = (m: Exposition, kind: string, reason: string, limit = ''): number => m.value('spawngate_launches_refused_total', { kind, reason, limit }) ?? 0;

/** `spawngate admin usage --json` for the same database, as an administrator would run it. */
async function adminUsage(): Promise<Array<Record<string, number | string | boolean>>> {
  let out = '';
  const code = await runAdmin(['--json', 'usage'], { env: dbEnv, io: { stdout: (s) => void (out += s), stderr: () => undefined } });
  expect(code).toBe(0);
  return JSON.parse(out) as Array<Record<string, number | string | boolean>>;
}

test('quotas, members and activity of every experiment are exported before any kernel runs', async () => {
  const m = await scrape();
  expect(m.value('spawngate_usage_up')).toBe(1);
  expect(m.value('spawngate_experiment_quota_cpu_cores', { experiment: 'genomics', bound: 'request' })).toBe(0.25);
  expect(m.value('spawngate_experiment_quota_cpu_cores', { experiment: 'genomics', bound: 'limit' })).toBe(1);
  expect(m.value('spawngate_experiment_quota_memory_bytes', { experiment: 'dormant-lab', bound: 'limit' })).toBe(2048 * MIB);
  expect(m.value('spawngate_experiment_quota_gpus', { experiment: 'dormant-lab' })).toBe(1);
  expect(m.value('spawngate_experiment_members', { experiment: 'genomics' })).toBe(3);
  expect(m.value('spawngate_experiment_members', { experiment: 'dormant-lab' })).toBe(0);
  expect(m.value('spawngate_experiment_active', { experiment: 'genomics' })).toBe(1);
  expect(m.value('spawngate_experiment_active', { experiment: 'dormant-lab' })).toBe(0);
  expect(m.value('spawngate_experiment_max_kernels')).toBe(5);
  expect(m.series('spawngate_kernels')).toEqual([]);
  expect(m.series('spawngate_user_kernels')).toEqual([]);
});

test('a running kernel shows in its experiment and its user, matches `spawngate admin usage`, and vanishes after shutdown', async () => {
  const res = await launch('alice');
  expect(res.status).toBe(201);
  const odd = await launch(ODD);
  expect(odd.status).toBe(201);

  const m = await scrape();
  const usage = await adminUsage();
  const genomics = usage.find((u) => u.experiment === 'genomics')!;
  expect(genomics.kernels).toBe(2);
  expect(m.value('spawngate_kernels', { experiment: 'genomics', state: 'running' })).toBe(genomics.kernels);
  expect(m.value('spawngate_experiment_reserved_cpu_cores', { experiment: 'genomics', bound: 'request' })).toBe(genomics.cpu_request);
  expect(m.value('spawngate_experiment_reserved_cpu_cores', { experiment: 'genomics', bound: 'limit' })).toBe(genomics.cpu_limit);
  expect(m.value('spawngate_experiment_reserved_memory_bytes', { experiment: 'genomics', bound: 'request' })).toBe(Number(genomics.memory_request_mib) * MIB);
  expect(m.value('spawngate_experiment_reserved_memory_bytes', { experiment: 'genomics', bound: 'limit' })).toBe(Number(genomics.memory_limit_mib) * MIB);
  expect(m.value('spawngate_experiment_reserved_gpus', { experiment: 'genomics' })).toBe(genomics.gpu_limit);
  expect(genomics.cpu_limit).toBe(2);

  // Per user: each holds one kernel of genomics; the odd name arrives intact as a label value.
  expect(m.value('spawngate_user_kernels', { user: 'alice', experiment: 'genomics' })).toBe(1);
  expect(m.value('spawngate_user_kernels', { user: ODD, experiment: 'genomics' })).toBe(1);
  expect(m.value('spawngate_user_reserved_cpu_cores', { user: ODD, bound: 'limit' })).toBe(1);
  expect(m.value('spawngate_user_reserved_memory_bytes', { user: 'alice', bound: 'request' })).toBe(256 * MIB);

  // Two launches that reached the kernel, on the local backend.
  expect(m.types.get('spawngate_kernel_start_duration_seconds')).toBe('histogram');
  expect(m.value('spawngate_kernel_start_duration_seconds_count', { backend: 'local', outcome: 'started' })).toBe(2);
  expect(m.value('spawngate_kernel_start_duration_seconds_sum', { backend: 'local', outcome: 'started' })).toBeGreaterThan(0);
  expect(m.value('spawngate_kernel_start_duration_seconds_count', { backend: 'local', outcome: 'failed' })).toBeUndefined();

  await request(service.app!).delete(`/api/kernels/${res.body.id}`).set({ Authorization: `token ${tokens.alice}` }).expect(204);
  const after = await scrape();
  expect(after.value('spawngate_kernels', { experiment: 'genomics', state: 'running' })).toBe(1);
  expect(after.value('spawngate_user_kernels', { user: 'alice', experiment: 'genomics' })).toBeUndefined();
  expect(after.value('spawngate_experiment_reserved_cpu_cores', { experiment: 'genomics', bound: 'limit' })).toBe(1);
  await request(service.app!).delete(`/api/kernels/${odd.body.id}`).set({ Authorization: `token ${tokens[ODD]}` }).expect(204);
  const empty = await scrape();
  expect(empty.series('spawngate_kernels')).toEqual([]);
  expect(empty.series('spawngate_experiment_reserved_cpu_cores')).toEqual([]);
  expect(empty.series('spawngate_user_kernels')).toEqual([]);
});

test('each refusal counts under its own reason, and only once', async () => {
  const before = await scrape();
  // bob is in no experiment; carol is denied by kernels.denied_users; 'dormant' belongs to an inactive
  // experiment; 'nowhere' is in no experiment (policy deny).
  expect((await launch('bob')).status).toBe(403);
  expect((await launch('carol')).status).toBe(403);
  expect((await launch('alice', 'dormant')).status).toBe(403);
  expect((await launch('alice', 'nowhere')).status).toBe(403);
  const first = await launch('alice');
  expect(first.status).toBe(201);
  const second = await launch('alice');
  expect(second.status).toBe(429);

  const m = await scrape();
  const delta = (reason: string, limit = '') => refused(m, 'kernel', reason, limit) - refused(before, 'kernel', reason, limit);
  expect(delta('not_member')).toBe(1);
  expect(delta('user_denied')).toBe(1);
  expect(delta('inactive_experiment')).toBe(1);
  expect(delta('unregistered_environment')).toBe(1);
  expect(delta('fair_share', 'kernels.max_kernels_per_user')).toBe(1);
  // Nothing else moved, and every reason exported is one docs/metrics.md documents.
  const total = (e: Exposition) => e.series('spawngate_launches_refused_total').reduce((n, s) => n + Number(s.value), 0);
  expect(total(m) - total(before)).toBe(5);
  for (const s of m.series('spawngate_launches_refused_total')) expect(REFUSAL_REASONS).toContain(s.labels.reason);
  await request(service.app!).delete(`/api/kernels/${first.body.id}`).set({ Authorization: `token ${tokens.alice}` }).expect(204);
});

test('servers count by profile and state (and per user); a server over its limit counts as a server refusal', async () => {
  await service.db.query(
    `INSERT INTO servers (username, server_name, workload_name, backend, profile, state) VALUES
       ('alice', '', 'sg-h16-srv-alice', 'local', 'small', 'running'),
       ('bob', '', 'sg-h16-srv-bob', 'local', 'small', 'pending'),
       ('bob', 'old', 'sg-h16-srv-bob-old', 'local', 'small', 'stopped')`,
  );
  const m = await scrape();
  expect(m.value('spawngate_servers', { profile: 'small', state: 'running' })).toBe(1);
  expect(m.value('spawngate_servers', { profile: 'small', state: 'pending' })).toBe(1);
  expect(m.value('spawngate_servers', { profile: 'small', state: 'stopped' })).toBeUndefined();
  expect(m.value('spawngate_user_servers', { user: 'bob' })).toBe(1);

  const before = refused(m, 'server', 'fair_share', 'servers.max_servers_per_user');
  await expect(
    service.lifecycle.requestStart({ username: 'alice', serverName: 'second', profile: profileSchema.parse({ slug: 'small', display_name: 'Small' }), userOptions: {}, env: {}, args: [], receivedAt: Date.now() }),
  ).rejects.toThrow(/servers.max_servers_per_user/);
  expect(refused(await scrape(), 'server', 'fair_share', 'servers.max_servers_per_user')).toBe(before + 1);
  await service.db.query(`DELETE FROM servers WHERE workload_name LIKE 'sg-h16-srv-%'`);
});

test('a database that cannot be read gives spawngate_usage_up 0 and no stale usage series, and the scrape still answers', async () => {
  const registry = new Registry();
  let fail = false;
  const errors: unknown[] = [];
  registerUsageMetrics(
    registry,
    {
      live: async () => {
        if (fail) throw new Error('connection refused');
        return [{ kind: 'kernel', experiment: 'genomics', profile: '', state: 'running', username: null, count: 3, cpu_request: 0.75, cpu_limit: 3, memory_request_mib: 768, memory_limit_mib: 3072, gpu_limit: 0 }];
      },
      quotas: async () => [],
    },
    { perUser: false, onError: (e) => errors.push(e) },
  );
  const ok = new Exposition(await registry.metrics());
  expect(ok.value('spawngate_kernels', { experiment: 'genomics', state: 'running' })).toBe(3);
  expect(ok.value('spawngate_usage_up')).toBe(1);
  expect(ok.types.has('spawngate_user_kernels')).toBe(false);
  fail = true;
  const down = new Exposition(await registry.metrics());
  expect(down.value('spawngate_usage_up')).toBe(0);
  expect(down.series('spawngate_kernels')).toEqual([]);
  expect(errors).toHaveLength(1);
});

test('every series /metrics exports (per-user switch on) is documented in docs/metrics.md', async () => {
  const doc = fs.readFileSync(path.join(__dirname, '..', '..', 'docs', 'metrics.md'), 'utf8');
  const m = await scrape();
  const names = [...m.types.keys()].filter((n) => !/^spawngate_(process|nodejs)_/.test(n));
  expect(names).toEqual(expect.arrayContaining(['spawngate_kernels', 'spawngate_user_kernels', 'spawngate_launches_refused_total', 'spawngate_kernel_start_duration_seconds']));
  for (const name of names) expect(doc).toContain(`| \`${name}\` |`);
  for (const reason of REFUSAL_REASONS) expect(doc).toContain(`| \`${reason}\` |`);
});
