/**
 * `spawngate admin …` against real Postgres: in-process through runAdmin (captured output), and once
 * as a real process through bin/spawngate.js (the built CLI) to prove the dispatch.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runAdmin } from '../../src/cli/admin';
import { recordLaunch } from '../../src/db';
import { insertKernel } from '../admin/helpers';
import { createTestPostgres, type TestPostgres } from '../db/helpers';

jest.setTimeout(60_000);

let pg: TestPostgres;
let env: NodeJS.ProcessEnv;
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-cli-admin-'));

beforeAll(async () => {
  pg = await createTestPostgres();
  env = { SPAWNGATE_DATABASE_URL: pg.url, SPAWNGATE_DATA_DIR: dataDir };
});
afterAll(() => pg?.drop());

async function admin(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runAdmin(args, { env, io: { stdout: (s) => void (out += s), stderr: (s) => void (err += s) } });
  return { code, out, err };
}
const json = async (...args: string[]): Promise<unknown> => {
  const r = await admin(...args, '--json');
  expect(r).toMatchObject({ code: 0, err: '' });
  return JSON.parse(r.out);
};

test('experiments: create prints a table; list --json is machine-readable', async () => {
  const r = await admin('experiments', 'create', 'genomics', '--cpu-request', '0.5', '--cpu-limit', '2', '--memory-request-mib', '512', '--memory-limit-mib', '4096');
  expect(r.code).toBe(0);
  const [header, rule, row] = r.out.trimEnd().split('\n');
  expect(header!.split(/\s+/)).toEqual(['name', 'active', 'cpu_request', 'cpu_limit', 'memory_request_mib', 'memory_limit_mib', 'gpu_limit', 'environments', 'members']);
  expect(rule).toMatch(/^-+ +-+/);
  expect(row!.split(/\s+/)).toEqual(['genomics', 'true', '0.5', '2', '512', '4096', '0', '0']);
  expect(await json('experiments', 'list')).toEqual([
    { name: 'genomics', cpu_request: 0.5, cpu_limit: 2, memory_request_mib: 512, memory_limit_mib: 4096, gpu_limit: 0, active: true, environments: [], members: 0 },
  ]);
});

test.each([
  [['experiments', 'create', 'bad', '--cpu-request', '4', '--cpu-limit', '2', '--memory-request-mib', '1', '--memory-limit-mib', '2'], /cpu_request must not exceed cpu_limit/],
  [['experiments', 'create', 'bad', '--cpu-request', 'lots', '--cpu-limit', '2', '--memory-request-mib', '1', '--memory-limit-mib', '2'], /cpu_request: a number of cores/],
  [['experiments', 'create', 'genomics', '--cpu-request', '1', '--cpu-limit', '2', '--memory-request-mib', '1', '--memory-limit-mib', '2'], /an experiment with this name already exists/],
  [['experiments', 'update', 'genomics', '--cpu-limit', '0.1'], /cpu_request must not exceed cpu_limit \(constraint experiments_cpu_request_within_limit\)/],
  [['environments', 'add', 'tf', '--experiment', 'nope'], /no experiment named 'nope'/],
  [['members', 'add', 'genomics', 'nobody'], /no user named 'nobody'/],
  [['users', 'create', 'bad/name'], /username: must not contain '\/'/],
])('refused: %j exits 1 with a readable message', async (args, message) => {
  const r = await admin(...args);
  expect(r.code).toBe(1);
  expect(r.out).toBe('');
  expect(r.err).toMatch(message);
});

test('usage errors exit 2', async () => {
  expect((await admin('experiments', 'frobnicate')).code).toBe(2);
  expect((await admin('environments', 'add', 'tf')).err).toMatch(/required option '--experiment <name>'/);
});

test('environments, users, members, update, deactivate', async () => {
  expect(await json('environments', 'add', 'tf', '--experiment', 'genomics')).toEqual({ name: 'tf', experiment: 'genomics', experiment_active: true });
  expect(await json('users', 'create', 'alice', '--email', 'alice@example.org')).toEqual({ username: 'alice', email: 'alice@example.org', active: true, experiments: [] });
  expect(await json('members', 'add', 'genomics', 'alice')).toMatchObject({ username: 'alice', source: 'sql' });
  expect(await json('members', 'add', 'genomics', 'bob', '--create-user')).toMatchObject({ username: 'bob', source: 'sql' });
  expect(((await json('members', 'list', 'genomics')) as { username: string }[]).map((m) => m.username)).toEqual(['alice', 'bob']);
  expect(await json('experiments', 'update', 'genomics', '--cpu-limit', '4', '--gpu-limit', '1')).toMatchObject({ cpu_limit: 4, gpu_limit: 1, environments: ['tf'], members: 2 });
  expect(await json('users', 'deactivate', 'bob')).toMatchObject({ username: 'bob', active: false });
  expect(((await json('users', 'list', '--active-only')) as { username: string }[]).map((u) => u.username)).toEqual(['alice']);
  expect(await json('members', 'remove', 'genomics', 'bob')).toEqual({ experiment: 'genomics', removed: 'bob' });
  // The view an administrator would query agrees with what the CLI did.
  expect(await pg.db.query("SELECT username, status FROM effective_limits WHERE environment = 'tf' ORDER BY username")).toEqual([
    { username: 'alice', status: 'granted' },
    { username: 'bob', status: 'refused: not a member' },
  ]);
});

test('usage and audit', async () => {
  await insertKernel(pg.db, { experiment: 'genomics', username: 'alice', state: 'running', limits: { cpu_request: 0.5, cpu_limit: 4, memory_request_mib: 512, memory_limit_mib: 4096, gpu_limit: 1 } });
  expect(await json('usage', 'genomics')).toEqual({ experiment: 'genomics', active: true, kernels: 1, cpu_request: 0.5, cpu_limit: 4, memory_request_mib: 512, memory_limit_mib: 4096, gpu_limit: 1 });
  const table = await admin('usage');
  expect(table.out).toMatch(/^experiment +active +kernels/);
  await recordLaunch(pg.db, { kernelId: '00000000-0000-4000-8000-000000000002', username: 'alice', kernelName: 'python3', environment: 'tf', experimentName: 'genomics', limits: {}, outcome: 'failed', message: 'no such image' });
  const entries = (await json('audit', '--limit', '100')) as { actor: string; action: string; target: string; details: Record<string, unknown> }[];
  const actor = `cli:${os.userInfo().username}`;
  expect(entries[0]).toMatchObject({ actor: 'alice', action: 'kernel.launch', details: { outcome: 'failed', message: 'no such image' } });
  expect(entries.filter((e) => e.actor === actor).map((e) => `${e.action} ${e.target}`).reverse()).toEqual([
    'experiments.insert genomics',
    'environments.insert tf',
    'users.insert alice',
    'experiment_members.insert genomics/alice',
    'users.insert bob',
    'experiment_members.insert genomics/bob',
    'experiments.update genomics',
    'users.update bob',
    'experiment_members.delete genomics/bob',
  ]);
  expect(entries.every((e) => e.actor === 'alice' || e.details.via === 'cli')).toBe(true);
  expect(((await json('audit', '--action', 'users.', '--target', 'bob')) as unknown[]).length).toBe(2);
});

test('the built CLI dispatches `spawngate admin`', () => {
  const cli = path.resolve(__dirname, '..', '..', 'bin', 'spawngate.js');
  const r = spawnSync(process.execPath, [cli, 'admin', 'experiments', 'show', 'genomics', '--json'], {
    env: { PATH: process.env.PATH, ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(JSON.parse(r.stdout)).toMatchObject({ name: 'genomics', cpu_limit: 4 });
  const bad = spawnSync(process.execPath, [cli, 'admin', 'experiments', 'show', 'nope'], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8', timeout: 30_000 });
  expect(bad.status).toBe(1);
  expect(bad.stderr).toBe("spawngate admin: no experiment named 'nope'\n");
});

test('without SPAWNGATE_DATABASE_URL the embedded database in SPAWNGATE_DATA_DIR is used', async () => {
  const embedded = { SPAWNGATE_DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'sg-cli-admin-embedded-')) };
  const io = () => {
    const o = { out: '', err: '' };
    return { o, io: { stdout: (s: string) => void (o.out += s), stderr: (s: string) => void (o.err += s) } };
  };
  const a = io();
  expect(await runAdmin(['experiments', 'create', 'local-exp', '--cpu-request', '1', '--cpu-limit', '1', '--memory-request-mib', '256', '--memory-limit-mib', '256'], { env: embedded, io: a.io })).toBe(0);
  const b = io();
  expect(await runAdmin(['--json', 'experiments', 'list'], { env: embedded, io: b.io })).toBe(0);
  expect(JSON.parse(b.o.out)).toEqual([expect.objectContaining({ name: 'local-exp', cpu_limit: 1 })]);
  // The Postgres database of the other tests never saw it.
  expect(await pg.db.query("SELECT name FROM experiments WHERE name = 'local-exp'")).toEqual([]);
});
