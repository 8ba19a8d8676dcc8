/**
 * The admin API over a real service on Postgres: admin-only access, zod validation messages, database
 * constraints translated to 400/409 with their meaning, usage from the kernels table, the audit log.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { loadConfig } from '../../src/config';
import { mintToken, recordLaunch } from '../../src/db';
import { createService, type Service } from '../../src/compose';
import { captureLogger, createTestPostgres, type TestPostgres } from '../db/helpers';
import { insertKernel } from './helpers';

jest.setTimeout(60_000);

const HUB = 'hub-token-for-tests-0123456789';
const ADMIN = 'admin-token-for-tests-0123456789';
let pg: TestPostgres;
let service: Service;
const admin = { Authorization: `token ${ADMIN}` };
const api = () => request(service.app!);

beforeAll(async () => {
  pg = await createTestPostgres();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-admin-api-'));
  service = await createService(
    loadConfig({ SPAWNGATE_DATA_DIR: dir, SPAWNGATE_DATABASE_URL: pg.url, SPAWNGATE_HUB_TOKEN: HUB, SPAWNGATE_ADMIN_TOKEN: ADMIN, SPAWNGATE_PORT: '0' }),
    { logger: captureLogger().logger },
  );
});

afterAll(async () => {
  await service?.close();
  await pg?.drop();
});

const genomics = { name: 'genomics', cpu_request: 0.5, cpu_limit: 2, memory_request_mib: 512, memory_limit_mib: 4096 };

describe('access', () => {
  test('no token 401; hub token and user tokens 403; admin token 200', async () => {
    expect((await api().get('/api/admin/experiments')).status).toBe(401);
    const hub = await api().get('/api/admin/experiments').set({ Authorization: `token ${HUB}` });
    expect(hub.status).toBe(403);
    expect(hub.body.message).toMatch(/admin token or an OIDC token with the admin role/);
    const user = await mintToken(service.db, { username: 'alice', kind: 'cli' });
    expect((await api().post('/api/admin/experiments').set({ Authorization: `token ${user}` }).send(genomics)).status).toBe(403);
    expect((await api().get('/api/admin/experiments').set(admin)).status).toBe(200);
  });

  test('the OpenAPI document describes the admin API', async () => {
    const doc = (await api().get('/api/openapi.json')).body;
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/admin/experiments', '/api/admin/experiments/{name}/members', '/api/admin/audit', '/api/admin/usage']));
    expect(doc.components.schemas.AdminExperimentCreate.required).toEqual(expect.arrayContaining(['name', 'cpu_request', 'cpu_limit', 'memory_request_mib', 'memory_limit_mib']));
  });
});

describe('experiments', () => {
  test('create, read, list', async () => {
    const res = await api().post('/api/admin/experiments').set(admin).send(genomics);
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ ...genomics, gpu_limit: 0, active: true, environments: [], members: 0 });
    expect((await api().get('/api/admin/experiments/genomics').set(admin)).body.cpu_limit).toBe(2);
    expect((await api().get('/api/admin/experiments').set(admin)).body.experiments).toHaveLength(1);
  });

  test.each([
    [{ name: 'x' }, /cpu_request: .*; cpu_limit: .*; memory_request_mib: .*; memory_limit_mib:/],
    [{ ...genomics, name: 'y', cpu_request: 4 }, /cpu_request must not exceed cpu_limit/],
    [{ ...genomics, name: 'y', memory_limit_mib: 1.5 }, /memory_limit_mib: a whole number of MiB/],
    [{ ...genomics, name: 'y', gpu_limit: -1 }, /gpu_limit: must not be negative/],
    [{ ...genomics, name: 'y', cpu_request: 0.0001 }, /cpu_request: at least 0\.001 cores \(1m\): less renders as 0m, which Kubernetes treats as no limit/],
    [{ ...genomics, name: ' padded' }, /name: must not start or end with spaces/],
    [{ ...genomics, name: 'y', colour: 'red' }, /colour/],
  ])('invalid input %j: 400 naming the field', async (body, message) => {
    const res = await api().post('/api/admin/experiments').set(admin).send(body);
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(message);
  });

  test('a duplicate name is 409', async () => {
    const res = await api().post('/api/admin/experiments').set(admin).send(genomics);
    expect(res.status).toBe(409);
    expect(res.body.message).toBe('an experiment with this name already exists (constraint experiments_name_key)');
  });

  test('an update that breaks request <= limit is refused by the database constraint, explained', async () => {
    const res = await api().patch('/api/admin/experiments/genomics').set(admin).send({ cpu_limit: 0.25 });
    expect(res.status).toBe(400);
    expect(res.body.message).toBe('cpu_request must not exceed cpu_limit (constraint experiments_cpu_request_within_limit)');
    expect((await api().get('/api/admin/experiments/genomics').set(admin)).body.cpu_limit).toBe(2);
  });

  test('update limits, deactivate, activate; unknown names are 404', async () => {
    expect((await api().patch('/api/admin/experiments/genomics').set(admin).send({ cpu_limit: 4, gpu_limit: 1 })).body).toMatchObject({ cpu_limit: 4, gpu_limit: 1 });
    expect((await api().post('/api/admin/experiments/genomics/deactivate').set(admin)).body.active).toBe(false);
    expect((await api().get('/api/admin/experiments?active_only=true').set(admin)).body.experiments).toEqual([]);
    expect((await api().post('/api/admin/experiments/genomics/activate').set(admin)).body.active).toBe(true);
    const missing = await api().patch('/api/admin/experiments/nope').set(admin).send({ cpu_limit: 4 });
    expect(missing.status).toBe(404);
    expect(missing.body.message).toBe("no experiment named 'nope'");
    expect((await api().patch('/api/admin/experiments/genomics').set(admin).send({})).body.message).toMatch(/nothing to change/);
  });
});

describe('environments', () => {
  test('register, refuse duplicates and unknown experiments, move, unregister', async () => {
    expect((await api().post('/api/admin/environments').set(admin).send({ name: 'tf', experiment: 'genomics' })).status).toBe(201);
    const dup = await api().post('/api/admin/environments').set(admin).send({ name: 'tf', experiment: 'genomics' });
    expect(dup.status).toBe(409);
    expect(dup.body.message).toMatch(/already registered \(one experiment per environment\)/);
    const unknown = await api().post('/api/admin/environments').set(admin).send({ name: 'torch', experiment: 'physics' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.message).toBe("no experiment named 'physics'");
    await api().post('/api/admin/experiments').set(admin).send({ ...genomics, name: 'physics' });
    expect((await api().patch('/api/admin/environments/tf').set(admin).send({ experiment: 'physics' })).body).toEqual({ name: 'tf', experiment: 'physics', experiment_active: true });
    expect((await api().get('/api/admin/experiments/physics').set(admin)).body.environments).toEqual(['tf']);
    expect((await api().delete('/api/admin/environments/tf').set(admin)).status).toBe(204);
    expect((await api().delete('/api/admin/environments/tf').set(admin)).status).toBe(404);
    expect((await api().post('/api/admin/environments').set(admin).send({ name: 'tf', experiment: 'genomics' })).status).toBe(201);
  });
});

describe('users and members', () => {
  test('users: validation, duplicates, deactivate', async () => {
    const bad = await api().post('/api/admin/users').set(admin).send({ username: ' leading space', email: 'nope' });
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/username: must not start or end with whitespace .*; email: must look like name@domain/);
    expect((await api().post('/api/admin/users').set(admin).send({ username: 'alice', email: 'alice@example.org' })).status).toBe(201);
    expect((await api().post('/api/admin/users').set(admin).send({ username: 'alice' })).status).toBe(409);
    expect((await api().post('/api/admin/users/alice/deactivate').set(admin)).body).toMatchObject({ username: 'alice', active: false });
    expect((await api().patch('/api/admin/users/alice').set(admin).send({ active: true, email: null })).body).toMatchObject({ active: true, email: null });
  });

  test('members: unknown user, create_user, duplicate, remove', async () => {
    const unknown = await api().post('/api/admin/experiments/genomics/members').set(admin).send({ username: 'bob' });
    expect(unknown.status).toBe(404);
    expect(unknown.body.message).toMatch(/no user named 'bob' \(create the user first, or pass create_user\)/);
    const added = await api().post('/api/admin/experiments/genomics/members').set(admin).send({ username: 'bob', create_user: true });
    expect(added.status).toBe(201);
    expect(added.body).toMatchObject({ username: 'bob', source: 'sql', user_active: true });
    expect((await api().post('/api/admin/experiments/genomics/members').set(admin).send({ username: 'alice' })).status).toBe(201);
    const dup = await api().post('/api/admin/experiments/genomics/members').set(admin).send({ username: 'bob' });
    expect(dup.status).toBe(409);
    expect(dup.body.message).toMatch(/already a member/);
    expect((await api().get('/api/admin/experiments/genomics/members').set(admin)).body.members.map((m: { username: string }) => m.username)).toEqual(['alice', 'bob']);
    expect((await api().get('/api/admin/users/bob').set(admin)).body.experiments).toEqual([{ experiment: 'genomics', source: 'sql' }]);
    expect((await api().delete('/api/admin/experiments/genomics/members/bob').set(admin)).status).toBe(204);
    expect((await api().delete('/api/admin/experiments/genomics/members/bob').set(admin)).status).toBe(404);
  });
});

describe('usage and audit', () => {
  test("usage adds up the live kernels' limits; finished kernels do not count", async () => {
    const limits = { cpu_request: 0.5, cpu_limit: 4, memory_request_mib: 512, memory_limit_mib: 4096, gpu_limit: 1 };
    await insertKernel(service.db, { experiment: 'genomics', username: 'alice', state: 'running', limits });
    await insertKernel(service.db, { experiment: 'genomics', username: 'alice', state: 'starting', limits });
    await insertKernel(service.db, { experiment: 'genomics', username: 'alice', state: 'terminated', limits });
    const res = await api().get('/api/admin/experiments/genomics/usage').set(admin);
    expect(res.body).toEqual({ experiment: 'genomics', active: true, kernels: 2, cpu_request: 1, cpu_limit: 8, memory_request_mib: 1024, memory_limit_mib: 8192, gpu_limit: 2 });
    expect((await api().get('/api/admin/usage').set(admin)).body.usage.find((u: { experiment: string }) => u.experiment === 'physics')).toMatchObject({ kernels: 0, cpu_limit: 0 });
  });

  test('the audit log records who changed what through the API, and launches', async () => {
    await recordLaunch(service.db, { kernelId: '00000000-0000-4000-8000-000000000001', username: 'alice', kernelName: 'python3', environment: 'tf', experimentName: 'genomics', limits: {}, outcome: 'started' });
    const exp = await api().get('/api/admin/audit?action=experiments.&target=genomics').set(admin);
    expect(exp.status).toBe(200);
    const actions = exp.body.entries.map((e: { action: string; actor: string; details: { via?: string } }) => `${e.actor} ${e.action} ${e.details.via}`);
    // Newest first: activate, deactivate, the limits update, the create (refused changes left no trace).
    expect(actions).toEqual(['admin-token experiments.update api', 'admin-token experiments.update api', 'admin-token experiments.update api', 'admin-token experiments.insert api']);
    const update = exp.body.entries[2];
    expect(update.details.old).toMatchObject({ cpu_limit: 2, gpu_limit: 0 });
    expect(update.details.new).toMatchObject({ cpu_limit: 4, gpu_limit: 1 });
    const launches = (await api().get('/api/admin/audit?action=kernel.launch').set(admin)).body.entries;
    expect(launches).toEqual([expect.objectContaining({ actor: 'alice', action: 'kernel.launch', target: '00000000-0000-4000-8000-000000000001', details: expect.objectContaining({ outcome: 'started', experiment: 'genomics', environment: 'tf' }) })]);
    const page = (await api().get('/api/admin/audit?limit=2').set(admin)).body.entries;
    expect(page).toHaveLength(2);
    const next = (await api().get(`/api/admin/audit?limit=2&before_id=${page[1].id}`).set(admin)).body.entries;
    expect(next[0].id).toBeLessThan(page[1].id);
    const bad = await api().get('/api/admin/audit?since=yesterday').set(admin);
    expect(bad.status).toBe(400);
    expect(bad.body.message).toMatch(/since: an ISO 8601 date-time/);
  });
});
