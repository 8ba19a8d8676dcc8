/**
 * Usage history on real Postgres: a sample per experiment per interval that matches `admin usage` at
 * that moment, written once per interval however many replicas sample it, pruned after the retention;
 * the admin API serves it to admins only and validates its query.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { listUsage } from '../../src/admin';
import { createService, type Service } from '../../src/compose';
import { loadConfig } from '../../src/config';
import { createPostgresDb, migrate, mintToken, recordUsageSample, selectUsageSamples, type Db } from '../../src/db';
import { captureLogger, createTestPostgres, type TestPostgres } from '../db/helpers';
import { insertKernel } from '../admin/helpers';

jest.setTimeout(120_000);

let pg: TestPostgres;
let replica: Db;

beforeAll(async () => {
  pg = await createTestPostgres();
  await migrate(pg.db);
  // A second pool on the same database stands for a second replica.
  replica = createPostgresDb({ url: pg.url, max: 2, logger: captureLogger().logger });
  await pg.db.query(`
    INSERT INTO users (username) VALUES ('alice'), ('bob');
    INSERT INTO experiments (name, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib, gpu_limit) VALUES ('genomics', 0.5, 2, 512, 4096, 1), ('idle-lab', 1, 1, 256, 256, 0);
  `);
  await insertKernel(pg.db, { experiment: 'genomics', username: 'alice', state: 'running', limits: { cpu_request: 0.5, cpu_limit: 2, memory_request_mib: 512, memory_limit_mib: 4096, gpu_limit: 1 } });
  await insertKernel(pg.db, { experiment: 'genomics', username: 'bob', state: 'starting', limits: { cpu_request: 0.5, cpu_limit: 2, memory_request_mib: 512, memory_limit_mib: 4096, gpu_limit: 1 } });
  await insertKernel(pg.db, { experiment: 'genomics', username: 'bob', state: 'terminated', limits: { cpu_request: 9, cpu_limit: 9, memory_request_mib: 9, memory_limit_mib: 9, gpu_limit: 9 } });
});

afterAll(async () => {
  await replica?.close();
  await pg?.drop();
});

const opts = { intervalSeconds: 300, retentionDays: 30 };

test('one sample per experiment per interval, equal to `admin usage` at that moment, whichever replicas sample', async () => {
  const counts = await Promise.all([recordUsageSample(pg.db, opts), recordUsageSample(replica, opts), recordUsageSample(replica, opts)]);
  // Two experiments, one row each: exactly one of the three calls wrote them.
  expect(counts.sort()).toEqual([0, 0, 2]);
  const samples = await selectUsageSamples(pg.db, { hours: 1 });
  expect(samples).toHaveLength(2);
  const start = new Date(samples[0]!.sampled_at).getTime();
  expect(start % 300_000).toBe(0);
  expect(Date.now() - start).toBeLessThan(300_000 + 5_000);
  const usage = await listUsage(pg.db);
  for (const u of usage) {
    const s = samples.find((x) => x.experiment === u.experiment)!;
    expect({ kernels: s.kernels, cpu_request: s.cpu_request, cpu_limit: s.cpu_limit, memory_request_mib: s.memory_request_mib, memory_limit_mib: s.memory_limit_mib, gpu_limit: s.gpu_limit }).toEqual({
      kernels: u.kernels,
      cpu_request: u.cpu_request,
      cpu_limit: u.cpu_limit,
      memory_request_mib: u.memory_request_mib,
      memory_limit_mib: u.memory_limit_mib,
      gpu_limit: u.gpu_limit,
    });
  }
  expect(samples.find((s) => s.experiment === 'genomics')!.kernels).toBe(2);
  expect(samples.find((s) => s.experiment === 'idle-lab')!.kernels).toBe(0);
  expect(await selectUsageSamples(pg.db, { hours: 1, experiment: 'idle-lab' })).toHaveLength(1);
});

test('samples older than the retention are pruned when the next sample is taken', async () => {
  await pg.db.query(`INSERT INTO usage_samples (sampled_at, experiment, kernels, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib, gpu_limit)
    VALUES (now() - interval '31 days', 'genomics', 1, 1, 1, 1, 1, 0), (now() - interval '29 days', 'genomics', 1, 1, 1, 1, 1, 0)`);
  await recordUsageSample(pg.db, opts);
  const all = await selectUsageSamples(pg.db, { hours: 24 * 40 });
  expect(all.filter((s) => Date.now() - new Date(s.sampled_at).getTime() > 30 * 86_400_000)).toEqual([]);
  expect(all.filter((s) => Date.now() - new Date(s.sampled_at).getTime() > 28 * 86_400_000)).toHaveLength(1);
});

describe('GET /api/admin/usage/history', () => {
  let service: Service;
  const ADMIN = 'admin-token-for-h16-history-0123456789';
  beforeAll(async () => {
    service = await createService(
      loadConfig({ SPAWNGATE_DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'sg-h16-hist-')), SPAWNGATE_DATABASE_URL: pg.url, SPAWNGATE_ADMIN_TOKEN: ADMIN, SPAWNGATE_PORT: '0' }),
      { logger: captureLogger().logger },
    );
  });
  afterAll(() => service?.close());

  test('admins get the samples; users are refused; a bad query is a 400 naming the field', async () => {
    const res = await request(service.app!).get('/api/admin/usage/history?hours=2').set({ Authorization: `token ${ADMIN}` });
    expect(res.status).toBe(200);
    expect(res.body.samples.map((s: { experiment: string }) => s.experiment).sort()).toEqual(['genomics', 'idle-lab']);
    const user = await mintToken(service.db, { username: 'alice', kind: 'cli' });
    expect((await request(service.app!).get('/api/admin/usage/history').set({ Authorization: `token ${user}` })).status).toBe(403);
    expect((await request(service.app!).get('/api/admin/usage/history')).status).toBe(401);
    const bad = await request(service.app!).get('/api/admin/usage/history?hours=0').set({ Authorization: `token ${ADMIN}` });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/^hours: /);
    expect((await request(service.app!).get('/api/admin/usage/history?evil=1').set({ Authorization: `token ${ADMIN}` })).status).toBe(400);
  });
});
