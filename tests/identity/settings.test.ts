/** OIDC settings: cross-field rules stop start-up with a message naming the variable; an unreachable IdP is a 503-class error. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ConfigError, fileConfigSchema, loadConfig } from '../../src/config';
import { createOidcIdentity, IdentityProviderUnavailableError, resolveOidcSettings, TokenRejectedError } from '../../src/identity';
import { claimValues } from '../../src/identity';
import { ENGINE_START_TIMEOUT_MS, createTestPglite, captureLogger } from '../db/helpers';

const withOidc = (oidc: object, env: Record<string, string> = {}) => ({ env: loadConfig(env).env, file: fileConfigSchema.parse({ oidc }) });

test('no issuer: OIDC is off', () => {
  expect(resolveOidcSettings(withOidc({}))).toBeUndefined();
});

test('an issuer without an audience is refused, naming SPAWNGATE_OIDC_AUDIENCE', () => {
  expect(() => resolveOidcSettings(withOidc({ issuer: 'https://idp.example/realms/x' }))).toThrow(ConfigError);
  expect(() => resolveOidcSettings(withOidc({ issuer: 'https://idp.example/realms/x' }))).toThrow(/SPAWNGATE_OIDC_AUDIENCE/);
});

test('an http issuer needs allow_insecure_http', () => {
  expect(() => resolveOidcSettings(withOidc({ issuer: 'http://idp.example', audience: 'a' }))).toThrow(/SPAWNGATE_OIDC_ISSUER: .* is not https/);
  expect(resolveOidcSettings(withOidc({ issuer: 'http://idp.example', audience: 'a', allow_insecure_http: true }))?.issuer).toBe('http://idp.example');
});

test('introspection needs a client id and SPAWNGATE_OIDC_CLIENT_SECRET', () => {
  expect(() => resolveOidcSettings(withOidc({ issuer: 'https://idp.example', audience: 'a', introspection: true, client_id: 'c' }))).toThrow(/SPAWNGATE_OIDC_CLIENT_SECRET/);
  const s = resolveOidcSettings(withOidc({ issuer: 'https://idp.example', audience: 'a', introspection: true, client_id: 'c' }, { SPAWNGATE_OIDC_CLIENT_SECRET: 's3cret-value' }));
  expect(s?.clientSecret).toBe('s3cret-value');
});

test('environment variables override the YAML issuer and audience (comma-separated)', () => {
  const s = resolveOidcSettings(withOidc({ issuer: 'https://a.example', audience: 'x' }, { SPAWNGATE_OIDC_ISSUER: 'https://b.example', SPAWNGATE_OIDC_AUDIENCE: 'api, other' }));
  expect(s).toMatchObject({ issuer: 'https://b.example', audience: ['api', 'other'] });
});

test('HS* and none are not accepted as algorithms', () => {
  expect(fileConfigSchema.safeParse({ oidc: { algorithms: ['HS256'] } }).success).toBe(false);
  expect(fileConfigSchema.safeParse({ oidc: { algorithms: ['none'] } }).success).toBe(false);
});

test('group claims: arrays, space-separated strings and dotted paths (Keycloak realm_access.roles); inherited names are not claims', () => {
  expect(claimValues({}, 'constructor')).toEqual([]);
  expect(claimValues({ a: {} }, 'a.toString')).toEqual([]);
  expect(claimValues({ groups: ['a', 1, 'b'] }, 'groups')).toEqual(['a', 'b']);
  expect(claimValues({ scope: 'read write' }, 'scope')).toEqual(['read', 'write']);
  expect(claimValues({ realm_access: { roles: ['admin'] } }, 'realm_access.roles')).toEqual(['admin']);
  expect(claimValues({}, 'groups')).toEqual([]);
});

test('an unreachable IdP is IdentityProviderUnavailableError (503), and discovery is retried on the next token', async () => {
  const server = http.createServer((_req, res) => void res.writeHead(500).end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const db = await createTestPglite();
  try {
    const settings = resolveOidcSettings(withOidc({ issuer, audience: 'a', allow_insecure_http: true }))!;
    const oidc = createOidcIdentity(settings, { db, logger: captureLogger().logger });
    await expect(oidc.authenticate('a.b.c')).rejects.toBeInstanceOf(IdentityProviderUnavailableError);
    await expect(oidc.authenticate('a.b.c')).rejects.toThrow(/OIDC discovery at .* failed/);
    // Not a JWT and no introspection: refused as a bad token without asking the (unreachable) IdP.
    await expect(oidc.authenticate('mistyped-static-token')).rejects.toBeInstanceOf(TokenRejectedError);
  } finally {
    server.close();
    await db.close();
  }
}, ENGINE_START_TIMEOUT_MS);
