/**
 * RFC 7662 introspection for opaque access tokens, through openid-client. Answers are cached briefly
 * (keyed by the token's SHA-256, never the token) so a busy client does not cost a round trip to the
 * IdP per request; an entry never outlives the token's `exp`.
 */
import { createHash } from 'node:crypto';
import type { Configuration } from 'openid-client';
import { IdentityProviderUnavailableError, TokenRejectedError } from './errors';
import { loadOpenIdClient } from './esm';
import type { TokenClaims } from './jwt-verifier';

export interface IntrospectorOptions {
  issuer: string;
  audience: string[];
  cacheSeconds: number;
  clockSkewSeconds: number;
  /** Bound on cached answers. */
  maxEntries?: number;
}

export function createIntrospector(configuration: Configuration, o: IntrospectorOptions): (token: string) => Promise<TokenClaims> {
  const cache = new Map<string, { claims: TokenClaims; until: number }>();
  const maxEntries = o.maxEntries ?? 10_000;
  return async function introspect(token: string): Promise<TokenClaims> {
    const key = createHash('sha256').update(token).digest('hex');
    const now = Date.now();
    const hit = cache.get(key);
    if (hit && hit.until > now) return hit.claims;
    cache.delete(key);
    const client = await loadOpenIdClient();
    let answer: Record<string, unknown>;
    try {
      answer = (await client.tokenIntrospection(configuration, token)) as Record<string, unknown>;
    } catch (err) {
      throw new IdentityProviderUnavailableError(`token introspection failed: ${(err as Error).message}`);
    }
    if (answer.active !== true) throw new TokenRejectedError('the token is not active (introspection)');
    if (typeof answer.iss === 'string' && answer.iss !== o.issuer) throw new TokenRejectedError("the token's 'iss' claim is not acceptable (introspection)");
    const aud = typeof answer.aud === 'string' ? [answer.aud] : Array.isArray(answer.aud) ? answer.aud : [];
    if (!aud.some((a) => o.audience.includes(String(a)))) throw new TokenRejectedError("the token's 'aud' claim is not acceptable (introspection)");
    const exp = typeof answer.exp === 'number' ? answer.exp * 1000 : undefined;
    if (exp !== undefined && exp + o.clockSkewSeconds * 1000 <= now) throw new TokenRejectedError('the token has expired');
    const until = Math.min(now + o.cacheSeconds * 1000, exp ?? Infinity);
    if (o.cacheSeconds > 0) {
      if (cache.size >= maxEntries) cache.delete(cache.keys().next().value as string);
      cache.set(key, { claims: answer, until });
    }
    return answer;
  };
}
