/**
 * "A deactivated user is refused everywhere at once" (issue 11), for websockets that are already open:
 * deactivation, revocation (admin API and `spawngate token revoke`), expiry and a server's stop close
 * the sockets opened with that credential within ~2 s, with 1008 and the reason, on whichever replica
 * serves them; everyone else's sockets stay open and keep working. Real Postgres, real system users,
 * real ipykernel kernels on the local backend.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import type WebSocket from 'ws';
import { runToken } from '../../src/cli/token';
import { createService, type Service } from '../../src/compose';
import { mintToken } from '../../src/db';
import { connectWs, execute } from '../support/jupyter-ws';
import { canCreateUsers, createSystemUser, removeSystemUsers, type SystemUser } from '../support/system-users';
import { IPYKERNEL, startTenantService, type TenantService } from '../gateway/tenant-service';

jest.setTimeout(120_000);

const cannot = canCreateUsers();
if (cannot) throw new Error(`ws-revocation tests ${cannot}`);

const HUB = 'hub-token-for-ws-revocation-0123456789';
const ADMIN = 'admin-token-for-ws-revocation-0123456789';
/** The guard re-checks every second; this leaves room for one slow pass on a loaded machine. */
const PROMPTLY_MS = 2500;

const tag = randomBytes(3).toString('hex');
let t: TenantService;
let alice: SystemUser;
let bob: SystemUser;
let homes: string;
const kernels: Record<string, string> = {};
const as = (token: string) => ({ Authorization: `token ${token}` });

function open(kernelId: string, token: string, port = t.port): Promise<WebSocket> {
  return connectWs(`ws://127.0.0.1:${port}/api/kernels/${kernelId}/channels`, as(token));
}

/** Resolves with the close code and reason once `ws` closes, or with code 0 after `ms`. */
function closing(ws: WebSocket, ms = PROMPTLY_MS): Promise<{ code: number; reason: string; after: number }> {
  const start = Date.now();
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ code: 0, reason: 'still open', after: Date.now() - start }), ms);
    ws.once('close', (code, reason) => {
      clearTimeout(timer);
      resolve({ code, reason: reason.toString('utf8'), after: Date.now() - start });
    });
  });
}

async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const env = { SPAWNGATE_DATABASE_URL: t.pg.url, SPAWNGATE_DATA_DIR: path.join(t.root, 'data'), SPAWNGATE_LOG_LEVEL: 'warn' };
  const code = await runToken(args, { env, io: { stdout: (s) => void (out += s), stderr: (s) => void (err += s) } });
  return { code, out, err };
}

beforeAll(async () => {
  homes = fs.mkdtempSync('/tmp/sg-wsr-homes-');
  fs.chmodSync(homes, 0o755);
  alice = createSystemUser(`wra${tag}`, homes);
  bob = createSystemUser(`wrb${tag}`, homes);
  t = await startTenantService({
    users: [alice.name, bob.name],
    homes,
    env: { SPAWNGATE_HUB_TOKEN: HUB, SPAWNGATE_ADMIN_TOKEN: ADMIN, SPAWNGATE_LOCAL_ALLOW_ROOT: '0' },
    // A server that records the gateway token it was given, so the test can open a socket with it.
    profiles: `  - slug: web\n    display_name: Web\n    command: ["/bin/sh", "-c", "printf %s \\"$JUPYTER_GATEWAY_AUTH_TOKEN\\" > \\"${homes}/$KERNEL_USERNAME/gateway-token\\"; exec /usr/bin/python3 -m http.server {port} --bind 127.0.0.1"]\n`,
  });
  for (const u of [alice, bob]) {
    t.kernelspec(u.name, 'python3', IPYKERNEL);
    fs.chownSync(u.home, u.uid, u.gid);
    for (const p of ['.local', '.local/share', '.local/share/jupyter', '.local/share/jupyter/kernels', '.local/share/jupyter/kernels/python3', '.local/share/jupyter/kernels/python3/kernel.json']) {
      fs.chownSync(path.join(u.home, p), u.uid, u.gid);
    }
    const res = await t.launch(u.name, 'python3');
    expect([res.status, res.body.message]).toEqual([201, undefined]);
    kernels[u.name] = res.body.id as string;
  }
});

afterAll(async () => {
  await t?.close();
  removeSystemUsers([alice, bob].filter(Boolean));
  if (homes) fs.rmSync(homes, { recursive: true, force: true });
});

test("deactivating alice closes her open websocket at once (1008, the reason); bob's stays open and works", async () => {
  const mine = await open(kernels[alice.name]!, t.tokens[alice.name]!);
  const his = await open(kernels[bob.name]!, t.tokens[bob.name]!);
  expect((await execute(mine, 'print(1 + 1)')).stdout.trim()).toBe('2');
  try {
    const closed = closing(mine);
    await t.service.db.query('UPDATE users SET active = false WHERE username = $1', [alice.name]);
    const c = await closed;
    expect({ code: c.code, reason: c.reason }).toEqual({ code: 1008, reason: expect.stringMatching(new RegExp(`user '${alice.name}' is deactivated`)) });
    expect(c.after).toBeLessThan(PROMPTLY_MS);
    expect(his.readyState).toBe(his.OPEN);
    expect((await execute(his, 'print(6 * 7)')).stdout.trim()).toBe('42');
  } finally {
    await t.service.db.query('UPDATE users SET active = true WHERE username = $1', [alice.name]);
    his.close();
  }
});

test('a token revoked through the admin API closes its open websocket (1008); her other token keeps its socket', async () => {
  const doomed = await mintToken(t.service.db, { username: alice.name, kind: 'cli', note: 'ws-revoke-admin' });
  const doomedWs = await open(kernels[alice.name]!, doomed);
  const other = await open(kernels[alice.name]!, t.tokens[alice.name]!);
  const listed = await request(t.service.app!).get(`/api/admin/tokens?user=${alice.name}`).set(as(ADMIN));
  const entry = (listed.body.tokens as Array<{ id: number; note: string | null }>).find((k) => k.note === 'ws-revoke-admin')!;
  const closed = closing(doomedWs);
  expect((await request(t.service.app!).delete(`/api/admin/tokens/${entry.id}`).set(as(ADMIN))).status).toBe(200);
  const c = await closed;
  expect({ code: c.code, reason: c.reason }).toEqual({ code: 1008, reason: expect.stringMatching(/token was revoked/) });
  expect(other.readyState).toBe(other.OPEN);
  expect((await execute(other, 'print("still here")')).stdout.trim()).toBe('still here');
  other.close();
});

test('`spawngate token revoke <id>` closes the websocket opened with that token (1008)', async () => {
  const minted = await cli('--user', alice.name, '--ttl', '1h', '--note', 'ws-revoke-cli');
  expect(minted.code).toBe(0);
  const id = /^token (\d+) /.exec(minted.err)![1]!;
  const ws = await open(kernels[alice.name]!, minted.out.trim());
  const closed = closing(ws);
  expect((await cli('revoke', id)).code).toBe(0);
  const c = await closed;
  expect({ code: c.code, reason: c.reason }).toEqual({ code: 1008, reason: expect.stringMatching(/token was revoked/) });
});

test('an open websocket closes (1008) when its token expires', async () => {
  const shortLived = await mintToken(t.service.db, { username: bob.name, kind: 'cli', ttlSeconds: 3 });
  const ws = await open(kernels[bob.name]!, shortLived);
  const c = await closing(ws, 3000 + PROMPTLY_MS);
  expect({ code: c.code, reason: c.reason }).toEqual({ code: 1008, reason: expect.stringMatching(/token expired/) });
  expect(c.after).toBeGreaterThan(1500);
});

test('revoking on one replica closes the socket another replica serves (the state is in Postgres)', async () => {
  let replica: Service | undefined;
  try {
    replica = await createService(t.service.config, { workers: false });
    const port = await replica.listen();
    const token = await mintToken(t.service.db, { username: bob.name, kind: 'cli', note: 'ws-revoke-replica' });
    const ws = await open(kernels[bob.name]!, token, port);
    expect((await execute(ws, 'print("via replica")')).stdout.trim()).toBe('via replica');
    const closed = closing(ws);
    const listed = await request(t.service.app!).get(`/api/admin/tokens?user=${bob.name}`).set(as(ADMIN));
    const entry = (listed.body.tokens as Array<{ id: number; note: string | null }>).find((k) => k.note === 'ws-revoke-replica')!;
    expect((await request(t.service.app!).delete(`/api/admin/tokens/${entry.id}`).set(as(ADMIN))).status).toBe(200);
    const c = await closed;
    expect({ code: c.code, reason: c.reason }).toEqual({ code: 1008, reason: expect.stringMatching(/token was revoked/) });
  } finally {
    await replica?.close();
  }
});

test("stopping alice's server revokes its gateway token and closes the websockets opened with it", async () => {
  const hub = as(HUB);
  const start = await request(t.service.app!).post(`/api/users/${alice.name}/server`).set(hub).send({ user_options: { profile: 'web' } });
  expect(start.status).toBe(202);
  const running = await request(t.service.app!).get(`/api/users/${alice.name}/server?wait=ready&timeout=30`).set(hub);
  expect(running.body.state).toBe('running');
  const serverToken = fs.readFileSync(path.join(alice.home, 'gateway-token'), 'utf8');
  expect(serverToken).toMatch(/^sg_/);
  const ws = await open(kernels[alice.name]!, serverToken);
  expect((await execute(ws, 'print("from the server")')).stdout.trim()).toBe('from the server');
  const closed = closing(ws, 10_000 + PROMPTLY_MS);
  const stop = await request(t.service.app!).delete(`/api/users/${alice.name}/server?wait=true&timeout=10`).set(hub);
  expect(stop.body.state).toBe('stopped');
  const stoppedAt = Date.now();
  const c = await closed;
  expect({ code: c.code, reason: c.reason }).toEqual({ code: 1008, reason: expect.stringMatching(/token was revoked|no longer exists/) });
  expect(Date.now() - stoppedAt).toBeLessThan(PROMPTLY_MS);
});
