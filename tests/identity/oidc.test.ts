/**
 * OIDC bearer tokens end to end: a real OpenID Provider (oidc-provider on 127.0.0.1) issues access
 * tokens; a real spawngate service (Postgres) accepts or refuses them. Tokens the IdP would never issue
 * (expired, wrong issuer, missing claims, alg none, forged, HS256 key confusion) are crafted with jose.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import WebSocket from 'ws';
import { loadConfig } from '../../src/config';
import { loadJose } from '../../src/identity/esm';
import { createService, type Service } from '../../src/compose';
import { captureLogger, createTestPostgres, type TestPostgres } from '../db/helpers';
import { CLIENT_SECRET, INTROSPECTION_CLIENT, startTestProvider, type TestProvider } from './oidc-provider';

jest.setTimeout(60_000);

const ADMIN = 'admin-token-for-tests-0123456789';
let idp: TestProvider;
let pg: TestPostgres;
let service: Service;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-oidc-'));

const logs = captureLogger();
const presented: string[] = [];
const bearer = (t: string) => {
  presented.push(t);
  return { Authorization: `Bearer ${t}` };
};
const app = () => request(service.app!);

beforeAll(async () => {
  jest.spyOn(console, 'warn').mockImplementation(() => undefined); // oidc-provider's "in-memory adapter" notice
  jest.spyOn(console, 'info').mockImplementation(() => undefined);
  idp = await startTestProvider(['admin-client', 'alice-client', 'nameless-client', 'badname-client', 'carol-client']);
  idp.claims.set('admin-client', { preferred_username: 'root-admin', roles: ['spawngate-admin'] });
  idp.claims.set('alice-client', { preferred_username: 'alice', roles: ['user'] });
  idp.claims.set('nameless-client', { roles: ['spawngate-admin'] });
  idp.claims.set('badname-client', { preferred_username: 'bad name/../x' });
  idp.claims.set('carol-client', { preferred_username: 'carol', groups: ['genomics-team'] });
  pg = await createTestPostgres();
  fs.writeFileSync(
    path.join(dir, 'config.yaml'),
    `oidc:
  issuer: ${idp.issuer}
  allow_insecure_http: true
  admin_claim: roles
  admin_values: [spawngate-admin]
  group_experiments:
    genomics-team: genomics
    imaging-team: [imaging, shared]
  group_sync_cache_seconds: 3600
  jwks_cooldown_seconds: 0
  clock_skew_seconds: 5
  token_type: at+jwt
  introspection: true
  client_id: ${INTROSPECTION_CLIENT}
`,
  );
  service = await createService(
    loadConfig({
      SPAWNGATE_DATA_DIR: path.join(dir, 'data'),
      SPAWNGATE_DATABASE_URL: pg.url,
      SPAWNGATE_ADMIN_TOKEN: ADMIN,
      SPAWNGATE_CONFIG: path.join(dir, 'config.yaml'),
      SPAWNGATE_OIDC_AUDIENCE: 'urn:spawngate',
      SPAWNGATE_OIDC_CLIENT_SECRET: CLIENT_SECRET,
      SPAWNGATE_PORT: '0',
    }),
    { logger: logs.logger },
  );
  await service.db.query(`
    INSERT INTO experiments (name, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib)
    VALUES ('genomics', 1, 2, 512, 1024), ('imaging', 1, 2, 512, 1024), ('shared', 1, 2, 512, 1024)`);
});

afterAll(async () => {
  await service?.close();
  await pg?.drop();
  await idp?.close();
});

/** A token signed with the IdP's current key, with claims the IdP would not put there. */
async function craft(claims: Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
  const jose = await loadJose();
  const jwk = idp.signingKey();
  const key = await jose.importJWK(jwk, 'RS256');
  const now = Math.floor(Date.now() / 1000);
  return new jose.SignJWT({ iss: idp.issuer, aud: 'urn:spawngate', iat: now, exp: now + 300, preferred_username: 'alice', ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: jwk.kid as string, typ: 'at+jwt', ...header })
    .sign(key);
}

describe('accepted', () => {
  test('an admin-role access token from the IdP reaches the admin API', async () => {
    const res = await app().get('/api/admin/experiments').set(bearer(await idp.token('admin-client')));
    expect(res.status).toBe(200);
    expect(res.body.experiments.map((e: { name: string }) => e.name)).toEqual(['genomics', 'imaging', 'shared']);
  });

  test("a user's access token acts as that user on the gateway, not as an admin", async () => {
    const token = await idp.token('alice-client');
    expect((await app().get('/api/kernels').set(bearer(token))).status).toBe(200);
    const other = await app().get('/api/kernelspecs?user=bob').set(bearer(token));
    expect(other.status).toBe(403);
    expect(other.body.message).toContain("belongs to 'alice'");
    const admin = await app().get('/api/admin/experiments').set(bearer(token));
    expect(admin.status).toBe(403);
  });

  test("an OIDC admin's changes are audited under their IdP user name", async () => {
    const token = await idp.token('admin-client');
    const res = await app().post('/api/admin/users').set(bearer(token)).send({ username: 'erin' });
    expect(res.status).toBe(201);
    const audit = await app().get('/api/admin/audit?target=erin').set(bearer(token));
    expect(audit.body.entries).toEqual([expect.objectContaining({ actor: 'oidc:root-admin', action: 'users.insert', details: expect.objectContaining({ via: 'api' }) })]);
  });

  test('the static admin token still works', async () => {
    expect((await app().get('/api/admin/users').set({ Authorization: `token ${ADMIN}` })).status).toBe(200);
  });

  test('an opaque token is checked by introspection (RFC 7662)', async () => {
    const opaque = await idp.token('admin-client', { resource: 'urn:spawngate-opaque' });
    expect(opaque.split('.')).toHaveLength(1);
    expect((await app().get('/api/admin/users').set(bearer(opaque))).status).toBe(200);
    const unknown = await app().get('/api/admin/users').set(bearer('x'.repeat(43)));
    expect(unknown.status).toBe(401);
    expect(unknown.body.message).toMatch(/not active/);
  });
});

describe('refused with 401', () => {
  const refused = async (token: string, message: RegExp) => {
    const res = await app().get('/api/kernels').set(bearer(token));
    expect(res.status).toBe(401);
    expect(res.body.message).toMatch(message);
  };

  test('expired', async () => {
    const now = Math.floor(Date.now() / 1000);
    await refused(await craft({ iat: now - 3600, exp: now - 60 }), /expired/);
  });

  test('a real token for another audience', async () => {
    await refused(await idp.token('alice-client', { resource: 'urn:other' }), /'aud' claim/);
  });

  test('another issuer, even signed with the right key', async () => {
    await refused(await craft({ iss: 'http://127.0.0.1:1/evil' }), /'iss' claim/);
  });

  test('no user name claim (a real token)', async () => {
    await refused(await idp.token('nameless-client'), /no 'preferred_username' claim/);
  });

  test('a user name the hub would not accept', async () => {
    await refused(await idp.token('badname-client'), /not a valid user name/);
  });

  test('no exp claim', async () => {
    const jose = await loadJose();
    const jwk = idp.signingKey();
    const token = await new jose.SignJWT({ iss: idp.issuer, aud: 'urn:spawngate', preferred_username: 'alice' })
      .setProtectedHeader({ alg: 'RS256', kid: jwk.kid as string, typ: 'at+jwt' })
      .sign(await jose.importJWK(jwk, 'RS256'));
    await refused(token, /'exp' claim/);
  });

  test('alg: none', async () => {
    const jose = await loadJose();
    const now = Math.floor(Date.now() / 1000);
    const token = new jose.UnsecuredJWT({ iss: idp.issuer, aud: 'urn:spawngate', exp: now + 300, preferred_username: 'root-admin', roles: ['spawngate-admin'] }).encode();
    await refused(token, /algorithm that is not accepted/);
  });

  test("a forged signature (another key claiming the IdP's kid)", async () => {
    const jose = await loadJose();
    const { privateKey } = await jose.generateKeyPair('RS256');
    const now = Math.floor(Date.now() / 1000);
    const token = await new jose.SignJWT({ iss: idp.issuer, aud: 'urn:spawngate', exp: now + 300, preferred_username: 'root-admin', roles: ['spawngate-admin'] })
      .setProtectedHeader({ alg: 'RS256', kid: idp.signingKey().kid as string, typ: 'at+jwt' })
      .sign(privateKey);
    await refused(token, /signature is invalid/);
  });

  test('HS256 signed with the public key (algorithm confusion)', async () => {
    const jose = await loadJose();
    const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...publicJwk } = idp.signingKey();
    const publicPem = await jose.exportSPKI((await jose.importJWK(publicJwk, 'RS256')) as Parameters<typeof jose.exportSPKI>[0]);
    const now = Math.floor(Date.now() / 1000);
    const token = await new jose.SignJWT({ iss: idp.issuer, aud: 'urn:spawngate', exp: now + 300, preferred_username: 'root-admin', roles: ['spawngate-admin'] })
      .setProtectedHeader({ alg: 'HS256', kid: idp.signingKey().kid as string, typ: 'at+jwt' })
      .sign(new TextEncoder().encode(publicPem));
    await refused(token, /algorithm that is not accepted/);
  });

  test("a token whose typ is not at+jwt (an ID token's shape)", async () => {
    await refused(await craft({}, { typ: 'JWT' }), /'typ' header is not acceptable/);
  });

  test('a garbage bearer token', async () => {
    await refused('aaa.bbb.ccc', /not a valid JWS/);
  });
});

describe('key rotation', () => {
  test('a token signed with a new key is accepted (unknown kid refetches the key set); the retired key is refused', async () => {
    const before = await idp.token('alice-client');
    expect((await app().get('/api/kernels').set(bearer(before))).status).toBe(200);
    await idp.rotateKeys();
    const after = await idp.token('alice-client');
    expect(JSON.parse(Buffer.from(after.split('.')[0]!, 'base64url').toString()).kid).not.toBe(
      JSON.parse(Buffer.from(before.split('.')[0]!, 'base64url').toString()).kid,
    );
    expect((await app().get('/api/kernels').set(bearer(after))).status).toBe(200);
    const old = await app().get('/api/kernels').set(bearer(before));
    expect(old.status).toBe(401);
    expect(old.body.message).toMatch(/no key of the issuer matches/);
  });
});

describe('IdP groups → experiment memberships', () => {
  const memberships = async (username: string) =>
    service.db.query<{ experiment: string; source: string }>(
      'SELECT experiment, source FROM memberships WHERE username = $1 ORDER BY experiment',
      [username],
    );

  test('memberships follow the groups; SQL memberships are left alone; every change is audited', async () => {
    // carol authenticates once with genomics-team: she is created and joins genomics.
    expect((await app().get('/api/kernels').set(bearer(await idp.token('carol-client')))).status).toBe(200);
    expect(await memberships('carol')).toEqual([{ experiment: 'genomics', source: 'oidc' }]);

    // An administrator adds her to 'shared' by SQL.
    await service.db.query(
      `INSERT INTO experiment_members (experiment_id, user_id)
       SELECT e.id, u.id FROM experiments e, users u WHERE e.name = 'shared' AND u.username = 'carol'`,
    );

    // Her groups change: genomics-team → imaging-team (imaging + shared).
    idp.claims.set('carol-client', { preferred_username: 'carol', groups: ['imaging-team'] });
    expect((await app().get('/api/kernels').set(bearer(await idp.token('carol-client')))).status).toBe(200);
    expect(await memberships('carol')).toEqual([
      { experiment: 'imaging', source: 'oidc' },
      { experiment: 'shared', source: 'sql' },
    ]);

    // No groups at all: the oidc membership goes, the SQL one stays.
    idp.claims.set('carol-client', { preferred_username: 'carol', groups: [] });
    expect((await app().get('/api/kernels').set(bearer(await idp.token('carol-client')))).status).toBe(200);
    expect(await memberships('carol')).toEqual([{ experiment: 'shared', source: 'sql' }]);

    const audit = await service.db.query<{ actor: string; action: string; target: string; via: string | null }>(
      `SELECT actor, action, target, details->>'via' AS via FROM audit_log
        WHERE target LIKE '%/carol' OR target = 'carol' ORDER BY id`,
    );
    expect(audit).toEqual([
      { actor: 'oidc:carol', action: 'users.insert', target: 'carol', via: 'group-sync' },
      { actor: 'oidc:carol', action: 'experiment_members.insert', target: 'genomics/carol', via: 'group-sync' },
      { actor: 'sql:root', action: 'experiment_members.insert', target: 'shared/carol', via: null },
      { actor: 'oidc:carol', action: 'experiment_members.insert', target: 'imaging/carol', via: 'group-sync' },
      { actor: 'oidc:carol', action: 'experiment_members.delete', target: 'genomics/carol', via: 'group-sync' },
      { actor: 'oidc:carol', action: 'experiment_members.delete', target: 'imaging/carol', via: 'group-sync' },
    ]);
  });

  test('an unchanged group set writes nothing (cached)', async () => {
    const count = async () => Number((await service.db.query<{ n: string }>('SELECT count(*) AS n FROM audit_log'))[0]!.n);
    idp.claims.set('carol-client', { preferred_username: 'carol', groups: ['genomics-team'] });
    await app().get('/api/kernels').set(bearer(await idp.token('carol-client')));
    const after = await count();
    // An administrator removes the synced membership by SQL: within the cache period nothing re-adds it.
    await service.db.query(`DELETE FROM experiment_members m USING users u WHERE m.user_id = u.id AND u.username = 'carol' AND m.source = 'oidc'`);
    for (let i = 0; i < 3; i++) expect((await app().get('/api/kernels').set(bearer(await idp.token('carol-client')))).status).toBe(200);
    expect(await count()).toBe(after + 1); // only the administrator's delete
    expect(await memberships('carol')).toEqual([{ experiment: 'shared', source: 'sql' }]);
  });
});

describe('deactivated users and kernel websockets', () => {
  test('a user deactivated in spawngate is refused (403) while the IdP still issues tokens', async () => {
    const token = await idp.token('alice-client');
    await service.db.query("UPDATE users SET active = false WHERE username = 'alice'");
    try {
      const res = await app().get('/api/kernels').set(bearer(token));
      expect(res.status).toBe(403);
      expect(res.body.message).toBe("user 'alice' is deactivated in spawngate");
    } finally {
      await service.db.query("UPDATE users SET active = true WHERE username = 'alice'");
    }
    expect((await app().get('/api/kernels').set(bearer(token))).status).toBe(200);
  });

  test('the channels websocket accepts OIDC tokens like the HTTP routes (404 for an unknown kernel, 401 for a bad token)', async () => {
    const port = await service.listen();
    const upgrade = (token: string) =>
      new Promise<number>((resolve, reject) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/api/kernels/00000000-0000-4000-8000-00000000abcd/channels`, { headers: bearer(token) });
        ws.on('unexpected-response', (_req, res) => {
          resolve(res.statusCode ?? 0);
          ws.terminate();
        });
        ws.on('open', () => reject(new Error('the upgrade should not succeed')));
        ws.on('error', () => undefined);
      });
    expect(await upgrade(await idp.token('alice-client'))).toBe(404);
    expect(await upgrade(await craft({ exp: Math.floor(Date.now() / 1000) - 3600 }))).toBe(401);
  });
});

test('no token and no client secret ever reaches the log', () => {
  const logged = JSON.stringify(logs.records);
  expect(logs.records.some((r) => r.message === 'OpenID Provider discovered')).toBe(true);
  expect(presented.length).toBeGreaterThan(10);
  for (const t of presented) expect(logged).not.toContain(t);
  expect(logged).not.toContain(CLIENT_SECRET);
});
