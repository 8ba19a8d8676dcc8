/**
 * An OIDC access token cannot be revoked, but it ends: a kernel websocket opened with one closes (1008,
 * with the reason) on the guard's first tick after the token's `exp` (plus the configured clock skew,
 * here 0), while a socket of the same user opened with a longer-lived token stays open and works.
 * Real OpenID Provider (oidc-provider) issuing a 4-second token, real spawngate on Postgres, real ipykernel.
 */
import type WebSocket from 'ws';
import { OIDC_TOKEN_EXPIRED } from '../../src/spawner-api/auth/open-socket-guard';
import { connectWs, execute } from '../support/jupyter-ws';
import { IPYKERNEL, startTenantService, type TenantService } from '../gateway/tenant-service';
import { CLIENT_SECRET, startTestProvider, type TestProvider } from './oidc-provider';

jest.setTimeout(120_000);

const USER = 'h11g-olga';
const SHORT_SECONDS = 4;
/** The guard ticks every second; this leaves room for one slow pass on a loaded machine. */
const PROMPTLY_MS = 2500;
let idp: TestProvider;
let t: TenantService;

beforeAll(async () => {
  jest.spyOn(console, 'warn').mockImplementation(() => undefined); // oidc-provider's "in-memory adapter" notice
  jest.spyOn(console, 'info').mockImplementation(() => undefined);
  idp = await startTestProvider(['short-client', 'long-client'], { ttlSeconds: { 'short-client': SHORT_SECONDS } });
  for (const c of ['short-client', 'long-client']) idp.claims.set(c, { preferred_username: USER });
  t = await startTenantService({
    users: [USER],
    extra: `oidc:\n  issuer: ${idp.issuer}\n  allow_insecure_http: true\n  clock_skew_seconds: 0\n  jwks_cooldown_seconds: 0\n`,
    env: { SPAWNGATE_OIDC_AUDIENCE: 'urn:spawngate', SPAWNGATE_OIDC_CLIENT_SECRET: CLIENT_SECRET },
  });
  t.kernelspec(USER, 'python3', IPYKERNEL);
});

afterAll(async () => {
  await t?.close();
  await idp?.close();
});

const expOf = (jwt: string): number => (JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as { exp: number }).exp * 1000;

test('a websocket opened with a short-lived OIDC token closes (1008, the reason) when the token expires; one opened with a longer-lived token stays and works', async () => {
  const launched = await t.launch(USER, 'python3');
  expect(launched.status).toBe(201);
  const url = `ws://127.0.0.1:${t.port}/api/kernels/${launched.body.id as string}/channels`;
  const short = await idp.token('short-client');
  const long = await idp.token('long-client');
  expect(expOf(short) - Date.now()).toBeLessThanOrEqual(SHORT_SECONDS * 1000);

  const shortWs: WebSocket = await connectWs(url, { Authorization: `Bearer ${short}` });
  const longWs: WebSocket = await connectWs(url, { Authorization: `Bearer ${long}` });
  const closed = new Promise<{ code: number; reason: string; at: number }>((resolve) =>
    shortWs.once('close', (code, reason) => resolve({ code, reason: reason.toString(), at: Date.now() })),
  );
  // Until it expires, the short token's socket works like any other.
  expect((await execute(shortWs, 'print(6 * 7)')).stdout.trim()).toBe('42');

  const c = await closed;
  expect(c.code).toBe(1008);
  expect(c.reason).toBe(OIDC_TOKEN_EXPIRED);
  expect(c.at).toBeGreaterThanOrEqual(expOf(short));
  expect(c.at - expOf(short)).toBeLessThan(PROMPTLY_MS);

  // The same user's other socket, whose token still holds, is untouched.
  expect(longWs.readyState).toBe(longWs.OPEN);
  expect((await execute(longWs, 'print(7 * 6)')).stdout.trim()).toBe('42');
  longWs.close();
});

test('the expired token is refused on a new upgrade too (401), so the client must come back with a fresh one', async () => {
  const short = await idp.token('short-client');
  await new Promise((r) => setTimeout(r, Math.max(0, expOf(short) - Date.now()) + 1100));
  const launched = await t.launch(USER, 'python3');
  await expect(connectWs(`ws://127.0.0.1:${t.port}/api/kernels/${launched.body.id as string}/channels`, { Authorization: `Bearer ${short}` })).rejects.toThrow('upgrade refused: 401');
});
