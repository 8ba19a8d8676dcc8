/**
 * The open-socket guard on its own, against real Postgres and real websockets: one pass is one query
 * however many sockets and tokens a replica holds (no per-socket polling), only the sockets whose
 * credential no longer holds are closed, and the close reason fits a close frame for any user name.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { createPostgresDb, migrate, mintToken, revokeUserTokens, type Db, type Queryable } from '../../src/db';
import { closeReason, OpenSocketGuard } from '../../src/spawner-api/auth/open-socket-guard';
import { deactivatedMessage } from '../../src/spawner-api/auth/resolve-identity';
import { captureLogger, createTestPostgres, type TestPostgres } from '../db/helpers';

jest.setTimeout(60_000);

let pg: TestPostgres;
let db: Db;
let server: http.Server;
let wss: WebSocketServer;
let port: number;
let queries = 0;
const counting: Queryable = {
  query: (sql, params) => {
    queries++;
    return db.query(sql, params);
  },
};
const { logger } = captureLogger();
const guard = new OpenSocketGuard({ db: counting, logger, intervalMs: 3_600_000 });

beforeAll(async () => {
  pg = await createTestPostgres();
  db = createPostgresDb({ url: pg.url });
  await migrate(db);
  await db.query("INSERT INTO users (username) VALUES ('gina'), ('hal')");
  server = http.createServer();
  wss = new WebSocketServer({ server });
  // The test's stand-in for the kernel channels handler: it tracks each socket with the token it presented.
  wss.on('connection', (ws, req) => {
    const url = new URL(req.url ?? '/', 'http://x');
    guard.track(ws, url.searchParams.get('token')!, { kind: 'user', username: url.searchParams.get('user')! });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  guard.close();
  for (const c of wss?.clients ?? []) c.terminate();
  wss?.close();
  await new Promise((r) => server?.close(r));
  await db?.close();
  await pg?.drop();
});

function connect(user: string, token: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/?user=${user}&token=${encodeURIComponent(token)}`);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

const closeOf = (ws: WebSocket): Promise<{ code: number; reason: string }> =>
  new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString('utf8') })));

test('one pass re-checks 24 sockets of 12 tokens in one query, and closes only those of revoked tokens', async () => {
  const gina = await Promise.all(Array.from({ length: 6 }, () => mintToken(db, { username: 'gina', kind: 'cli' })));
  const hal = await Promise.all(Array.from({ length: 6 }, () => mintToken(db, { username: 'hal', kind: 'cli' })));
  // Several sockets per token, as a notebook with a few tabs open has.
  const ginaWs = await Promise.all([...gina, ...gina, ...gina.slice(0, 3)].map((tk) => connect('gina', tk)));
  const halWs = await Promise.all([...hal, ...hal.slice(0, 3)].map((tk) => connect('hal', tk)));
  await new Promise((r) => setTimeout(r, 100)); // the server side's 'connection' handlers have run
  expect(guard.size).toBe(24);

  queries = 0;
  await guard.check();
  expect(queries).toBe(1);
  expect([...ginaWs, ...halWs].every((ws) => ws.readyState === ws.OPEN)).toBe(true);

  await revokeUserTokens(db, 'gina');
  const closes = Promise.all(ginaWs.map(closeOf));
  queries = 0;
  await guard.check();
  expect(queries).toBe(1);
  const codes = await closes;
  expect(new Set(codes.map((c) => `${c.code} ${c.reason}`))).toEqual(new Set(['1008 this token was revoked; ask for a new one']));
  expect(halWs.every((ws) => ws.readyState === ws.OPEN)).toBe(true);
  expect(guard.size).toBe(halWs.length);
  halWs.forEach((ws) => ws.close());
});

test('with no open socket a pass asks the database nothing', async () => {
  await new Promise((r) => setTimeout(r, 100));
  expect(guard.size).toBe(0);
  queries = 0;
  await guard.check();
  expect(queries).toBe(0);
});

test('the close reason fits the 123 bytes of a close frame without splitting a character', () => {
  const long = deactivatedMessage(`${'é'.repeat(40)}ø`);
  expect(Buffer.byteLength(long)).toBeGreaterThan(123);
  const cut = closeReason(long);
  expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(123);
  expect(cut).not.toContain('\uFFFD');
  expect(cut.endsWith('...')).toBe(true);
  expect(long.startsWith(cut.slice(0, -3))).toBe(true);
  expect(closeReason('this token was revoked; ask for a new one')).toBe('this token was revoked; ask for a new one');
});
