/**
 * A real OpenID Provider for tests: `oidc-provider` (the certified Node OP) on 127.0.0.1, issuing
 * client_credentials access tokens bound to a resource indicator — JWTs for `urn:spawngate` and
 * `urn:other`, opaque ones (for introspection) for `urn:spawngate-opaque`. Each client's extra claims
 * (user name, groups, roles) are set per test. `rotateKeys` restarts it on the same port with a new
 * signing key, as an IdP rotating keys would.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

const importEsm = eval('(specifier) => import(specifier)') as (specifier: string) => Promise<unknown>;

type Jwk = Record<string, unknown> & { kid?: string };

export interface TestProvider {
  issuer: string;
  /** Client id → claims added to its tokens. Mutable. */
  claims: Map<string, Record<string, unknown>>;
  /** The current private signing key (JWK), so tests can sign tokens the IdP would never issue. */
  signingKey(): Jwk;
  token(clientId: string, opts?: { resource?: string }): Promise<string>;
  /** Restarts with a fresh signing key; `keepOld` also keeps publishing the previous public key. */
  rotateKeys(opts?: { keepOld?: boolean }): Promise<void>;
  close(): Promise<void>;
}

export const CLIENT_SECRET = 'client-secret-for-tests-0123456789';
/** Client spawngate uses for introspection. */
export const INTROSPECTION_CLIENT = 'spawngate-introspector';

export interface TestProviderOptions {
  /** Client id → lifetime of its access tokens, seconds (default 600). */
  ttlSeconds?: Record<string, number>;
}

export async function startTestProvider(clientIds: string[], opts: TestProviderOptions = {}): Promise<TestProvider> {
  const jose = (await importEsm('jose')) as typeof import('jose');
  const { default: Provider } = (await importEsm('oidc-provider')) as { default: new (issuer: string, config: object) => { callback(): http.RequestListener } };

  const newKey = async (): Promise<Jwk> => {
    const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
    const jwk = (await jose.exportJWK(privateKey)) as Jwk;
    return { ...jwk, kid: `k-${Math.random().toString(36).slice(2, 10)}`, alg: 'RS256', use: 'sig' };
  };

  const claims = new Map<string, Record<string, unknown>>();
  let keys: Jwk[] = [await newKey()];
  const server = http.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const build = () =>
    new Provider(issuer, {
      clients: [
        ...clientIds.map((client_id) => ({
          client_id,
          client_secret: CLIENT_SECRET,
          grant_types: ['client_credentials'],
          redirect_uris: [],
          response_types: [],
        })),
        { client_id: INTROSPECTION_CLIENT, client_secret: CLIENT_SECRET, grant_types: [], redirect_uris: [], response_types: [] },
      ],
      jwks: { keys },
      features: {
        clientCredentials: { enabled: true },
        introspection: { enabled: true },
        devInteractions: { enabled: false },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => 'urn:spawngate',
          getResourceServerInfo: (_ctx: unknown, resource: string) => {
            if (!['urn:spawngate', 'urn:other', 'urn:spawngate-opaque'].includes(resource)) throw new Error('unknown resource');
            return resource === 'urn:spawngate-opaque'
              ? { scope: 'api', audience: 'urn:spawngate', accessTokenFormat: 'opaque' }
              : { scope: 'api', audience: resource, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } };
          },
        },
      },
      ttl: { ClientCredentials: (_ctx: unknown, token: { clientId?: string }) => opts.ttlSeconds?.[token.clientId ?? ''] ?? 600 },
      extraTokenClaims: (_ctx: unknown, token: { clientId?: string }) => claims.get(token.clientId ?? '') ?? {},
    });

  let listener = build().callback();
  server.on('request', (req, res) => listener(req, res));

  return {
    issuer,
    claims,
    signingKey: () => keys[0]!,
    async token(clientId, opts = {}) {
      const res = await fetch(`${issuer}/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${clientId}:${CLIENT_SECRET}`).toString('base64')}`,
        },
        body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'api', resource: opts.resource ?? 'urn:spawngate' }),
      });
      const body = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
      if (!body.access_token) throw new Error(`token request failed: ${res.status} ${body.error} ${body.error_description}`);
      return body.access_token;
    },
    async rotateKeys(opts = {}) {
      keys = opts.keepOld ? [await newKey(), ...keys] : [await newKey()];
      listener = build().callback();
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
