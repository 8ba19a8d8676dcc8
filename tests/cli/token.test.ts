/**
 * `spawngate token …` against real Postgres, in-process through runToken (captured output) and once
 * through bin/spawngate.js: mint with a 24 h default expiry (`--ttl 0`: none), list without secrets,
 * revoke by id or by user, every mint and revoke audited as `cli:<OS user>`.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runToken } from '../../src/cli/token';
import { createPostgresDb, hashToken, lookupToken, migrate, type Db } from '../../src/db';
import { createTestPostgres, type TestPostgres } from '../db/helpers';

jest.setTimeout(60_000);

let pg: TestPostgres;
let db: Db;
let env: NodeJS.ProcessEnv;
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-cli-token-'));

beforeAll(async () => {
  pg = await createTestPostgres();
  env = { SPAWNGATE_DATABASE_URL: pg.url, SPAWNGATE_DATA_DIR: dataDir };
  db = createPostgresDb({ url: pg.url });
  await migrate(db);
});
afterAll(async () => {
  await db?.close();
  await pg?.drop();
});

async function token(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await runToken(args, { env, io: { stdout: (s) => void (out += s), stderr: (s) => void (err += s) } });
  return { code, out, err };
}

test('`spawngate token --user alice` prints only the token, which expires in 24 hours', async () => {
  const r = await token('--user', 'alice');
  expect(r.code).toBe(0);
  expect(r.out).toMatch(/^sg_[A-Za-z0-9_-]{43}\n$/);
  expect(r.err).toMatch(/^token \d+ for 'alice' expires \d{4}-/);
  const found = await lookupToken(db, r.out.trim());
  expect(found).toMatchObject({ username: 'alice', kind: 'cli', status: 'valid' });
  const hours = (found!.expiresAt!.getTime() - Date.now()) / 3600_000;
  expect(hours).toBeGreaterThan(23.9);
  expect(hours).toBeLessThanOrEqual(24);
});

test('--ttl takes a duration; --ttl 0 mints a token that never expires; a bad --ttl is refused', async () => {
  const short = await token('mint', '--user', 'bob', '--ttl', '15m');
  expect(short.code).toBe(0);
  const minutes = ((await lookupToken(db, short.out.trim()))!.expiresAt!.getTime() - Date.now()) / 60_000;
  expect(minutes).toBeGreaterThan(14.9);
  expect(minutes).toBeLessThanOrEqual(15);
  const forever = await token('--user', 'bob', '--ttl', '0', '--note', 'robot');
  expect((await lookupToken(db, forever.out.trim()))!.expiresAt).toBeNull();
  expect(forever.err).toMatch(/never expires/);
  const bad = await token('--user', 'bob', '--ttl', 'soon');
  expect(bad.code).toBe(1);
  expect(bad.err).toMatch(/ttl: 'soon' is not a duration/);
  expect(bad.out).toBe('');
  expect((await token('--ttl', '1h')).err).toMatch(/--user/);
});

test('list shows ids, owners and states, never a token or its hash', async () => {
  const minted = (await token('--user', 'carol', '--note', 'laptop')).out.trim();
  const r = await token('list', '--user', 'carol');
  expect(r.code).toBe(0);
  expect(r.out).toMatch(/^id\s+username\s+kind\s+state/);
  expect(r.out).toMatch(/carol\s+cli\s+active/);
  expect(r.out).toContain('laptop');
  expect(r.out).not.toContain(minted);
  expect(r.out).not.toContain(hashToken(minted));
  const json = JSON.parse((await token('list', '--json')).out) as Array<Record<string, unknown>>;
  expect(JSON.stringify(json)).not.toContain(minted);
  expect(json.some((t) => t.username === 'carol')).toBe(true);
});

test('revoke <id> and revoke --user take effect at once and are audited as the OS user', async () => {
  const one = (await token('--user', 'dave')).out.trim();
  const two = (await token('--user', 'dave')).out.trim();
  const [row] = await db.query<{ id: string }>('SELECT id FROM api_tokens WHERE token_hash = $1', [hashToken(one)]);
  const r = await token('revoke', String(row!.id));
  expect(r).toMatchObject({ code: 0, out: `revoked token ${row!.id} of 'dave'\n` });
  expect((await lookupToken(db, one))!.status).toBe('revoked');
  expect((await lookupToken(db, two))!.status).toBe('valid');
  expect((await token('revoke', '--user', 'dave')).out).toBe("revoked 1 token(s) of 'dave'\n");
  expect((await lookupToken(db, two))!.status).toBe('revoked');
  expect((await token('revoke', '999999')).err).toMatch(/no token with id 999999/);
  expect((await token('revoke')).code).toBe(1);

  const audit = await db.query<{ action: string; actor: string; details: { via?: string } }>(
    "SELECT action, actor, details FROM audit_log WHERE target = 'dave' AND action LIKE 'token.%' ORDER BY id",
  );
  const me = `cli:${os.userInfo().username}`;
  expect(audit.map((a) => [a.action, a.actor, a.details.via])).toEqual([
    ['token.mint', me, 'cli'],
    ['token.mint', me, 'cli'],
    ['token.revoke', me, 'cli'],
    ['token.revoke', me, 'cli'],
  ]);
});

test('the built CLI dispatches `spawngate token` (bin/spawngate.js)', () => {
  const cli = path.resolve(__dirname, '..', '..', 'bin', 'spawngate.js');
  const r = spawnSync(process.execPath, [cli, 'token', '--user', 'erin', '--ttl', '1h'], { env: { PATH: process.env.PATH, ...env }, encoding: 'utf8', timeout: 30_000 });
  expect(r.status).toBe(0);
  expect(r.stdout).toMatch(/^sg_[A-Za-z0-9_-]{43}\n$/);
});
