/**
 * OIDC bearer tokens → a principal (user name, admin or not, groups). The provider is discovered lazily
 * on the first token (so spawngate starts while the IdP is down; only OIDC callers get 503 until it is
 * back), JWTs are verified locally with the issuer's keys, and opaque tokens go to introspection when
 * it is enabled. With a group mapping configured, memberships follow the caller's groups.
 */
import { isUserDeactivated, type Db } from '../db';
import { registerSecret, type Logger } from '../logging';
import { ClaimError, claimValues, isAdmin, usernameFrom } from './claims';
import { IdentityProviderUnavailableError, TokenRejectedError, UserDeactivatedError } from './errors';
import { loadOpenIdClient } from './esm';
import { createGroupSync, type GroupSync } from './group-sync';
import { createIntrospector } from './introspection';
import { createJwtVerifier, looksLikeJwt, type TokenClaims } from './jwt-verifier';
import type { OidcSettings } from './settings';

export interface OidcPrincipal {
  username: string;
  admin: boolean;
  groups: string[];
  /**
   * When spawngate stops accepting this token: its `exp` plus the allowed clock skew. Undefined for a
   * token without `exp` (only introspection may answer so). Open websockets close at this instant.
   */
  expiresAt?: Date;
}

export interface OidcIdentity {
  /** Throws TokenRejectedError (401), UserDeactivatedError (403) or IdentityProviderUnavailableError (503). */
  authenticate(token: string): Promise<OidcPrincipal>;
  readonly groupSync?: GroupSync;
}

interface Verifiers {
  jwt: (token: string) => Promise<TokenClaims>;
  introspect?: (token: string) => Promise<TokenClaims>;
}

export function createOidcIdentity(settings: OidcSettings, deps: { db: Db; logger: Logger }): OidcIdentity {
  registerSecret(settings.clientSecret);
  const log = deps.logger.child({ component: 'oidc' });
  let loading: Promise<Verifiers> | undefined;

  async function discover(): Promise<Verifiers> {
    const client = await loadOpenIdClient();
    let configuration: Awaited<ReturnType<typeof client.discovery>>;
    try {
      configuration = await client.discovery(
        new URL(settings.issuer),
        settings.client_id ?? 'spawngate',
        settings.clientSecret,
        undefined,
        { execute: settings.allow_insecure_http ? [client.allowInsecureRequests] : [], timeout: 10 },
      );
    } catch (err) {
      throw new IdentityProviderUnavailableError(`OIDC discovery at ${settings.issuer} failed: ${(err as Error).message}`);
    }
    const meta = configuration.serverMetadata();
    if (!meta.jwks_uri) throw new IdentityProviderUnavailableError(`the OpenID Provider ${settings.issuer} publishes no jwks_uri`);
    const jwt = await createJwtVerifier({
      issuer: meta.issuer,
      audience: settings.audience,
      jwksUri: meta.jwks_uri,
      algorithms: settings.algorithms,
      clockSkewSeconds: settings.clock_skew_seconds,
      cacheSeconds: settings.jwks_cache_seconds,
      cooldownSeconds: settings.jwks_cooldown_seconds,
      tokenType: settings.token_type,
    });
    let introspect: Verifiers['introspect'];
    if (settings.introspection) {
      if (!meta.introspection_endpoint) throw new IdentityProviderUnavailableError(`the OpenID Provider ${settings.issuer} publishes no introspection_endpoint`);
      introspect = createIntrospector(configuration, {
        issuer: meta.issuer,
        audience: settings.audience,
        cacheSeconds: settings.introspection_cache_seconds,
        clockSkewSeconds: settings.clock_skew_seconds,
      });
    }
    log.info('OpenID Provider discovered', { issuer: meta.issuer, introspection: Boolean(introspect) });
    return { jwt, introspect };
  }

  function verifiers(): Promise<Verifiers> {
    // A failed discovery is not cached: the next token tries again.
    loading ??= discover().catch((err: unknown) => {
      loading = undefined;
      throw err;
    });
    return loading;
  }

  const groupSync =
    settings.groupExperiments.size > 0
      ? createGroupSync({ db: deps.db, logger: log, mapping: settings.groupExperiments, cacheSeconds: settings.group_sync_cache_seconds })
      : undefined;

  return {
    groupSync,
    async authenticate(token) {
      const jwt = looksLikeJwt(token);
      // Decided before discovery: a mistyped static token is a plain 401 even while the IdP is down.
      if (!jwt && !settings.introspection) throw new TokenRejectedError('the token is not a JWT and token introspection is not enabled');
      const v = await verifiers();
      let claims: TokenClaims;
      if (jwt) claims = await v.jwt(token);
      else claims = await v.introspect!(token);
      let username: string;
      try {
        username = usernameFrom(claims, settings.username_claim);
      } catch (err) {
        if (err instanceof ClaimError) throw new TokenRejectedError(err.message);
        throw err;
      }
      const groups = claimValues(claims, settings.groups_claim);
      const admin = isAdmin(claims, settings.admin_claim, settings.admin_values);
      if (groupSync) await groupSync.sync(username, groups);
      // Deactivating a user in spawngate (users.active = false) takes effect even while the IdP still
      // issues them tokens. A user spawngate has never seen has no row and is not refused here.
      if (await isUserDeactivated(deps.db, username)) throw new UserDeactivatedError(`user '${username}' is deactivated in spawngate`);
      const expiresAt = typeof claims.exp === 'number' ? new Date((claims.exp + settings.clock_skew_seconds) * 1000) : undefined;
      return { username, admin, groups, ...(expiresAt ? { expiresAt } : {}) };
    },
  };
}
