/**
 * Verifies JWT access tokens with jose against the issuer's key set. jose's remote key set caches the
 * keys, refetches when a token names an unknown `kid` (key rotation) and rate-limits refetches, so a
 * flood of tokens with made-up kids cannot turn into a flood of requests to the IdP.
 */
import { IdentityProviderUnavailableError, TokenRejectedError } from './errors';
import { loadJose } from './esm';

export interface JwtVerifierOptions {
  issuer: string;
  audience: string[];
  jwksUri: string;
  algorithms: string[];
  clockSkewSeconds: number;
  cacheSeconds: number;
  cooldownSeconds: number;
  /** Required `typ` header (RFC 9068: at+jwt). */
  tokenType?: string;
}

export type TokenClaims = Record<string, unknown>;

/** jose error codes that mean "this token is not acceptable" (everything else is an IdP/network problem). */
const REJECTION_MESSAGES: Record<string, string> = {
  ERR_JWT_EXPIRED: 'the token has expired',
  ERR_JWT_CLAIM_VALIDATION_FAILED: 'a claim of the token is not acceptable',
  ERR_JOSE_ALG_NOT_ALLOWED: 'the token is signed with an algorithm that is not accepted',
  ERR_JWS_SIGNATURE_VERIFICATION_FAILED: 'the token signature is invalid',
  ERR_JWKS_NO_MATCHING_KEY: "no key of the issuer matches the token's key id",
  ERR_JWKS_MULTIPLE_MATCHING_KEYS: 'the token matches several keys of the issuer',
  ERR_JWS_INVALID: 'the token is not a valid JWS',
  ERR_JWT_INVALID: 'the token is not a valid JWT',
  ERR_JOSE_NOT_SUPPORTED: 'the token uses an unsupported algorithm or key',
  ERR_JWK_INVALID: 'the token names an invalid key',
};

function rejection(err: unknown): Error {
  const e = err as { code?: string; claim?: string; reason?: string; message?: string };
  const base = e.code ? REJECTION_MESSAGES[e.code] : undefined;
  if (!base) {
    return new IdentityProviderUnavailableError(`cannot verify the token: the issuer's key set is unavailable (${e.message ?? String(err)})`);
  }
  if (e.code === 'ERR_JWT_CLAIM_VALIDATION_FAILED') {
    // jose names the claim and why ("unexpected \"aud\" claim value", "missing required \"sub\" claim").
    const what = e.claim === 'typ' ? 'header' : 'claim';
    return new TokenRejectedError(`the token's '${e.claim ?? '?'}' ${what} is not acceptable (${e.message ?? e.reason})`);
  }
  return new TokenRejectedError(base);
}

export async function createJwtVerifier(o: JwtVerifierOptions): Promise<(token: string) => Promise<TokenClaims>> {
  const jose = await loadJose();
  const keys = jose.createRemoteJWKSet(new URL(o.jwksUri), {
    cacheMaxAge: o.cacheSeconds * 1000,
    cooldownDuration: o.cooldownSeconds * 1000,
    timeoutDuration: 5000,
  });
  return async function verifyJwt(token: string): Promise<TokenClaims> {
    try {
      const { payload } = await jose.jwtVerify(token, keys, {
        issuer: o.issuer,
        audience: o.audience,
        algorithms: o.algorithms,
        clockTolerance: o.clockSkewSeconds,
        requiredClaims: ['exp', 'iss', 'aud'],
        typ: o.tokenType,
      });
      return payload as TokenClaims;
    } catch (err) {
      throw rejection(err);
    }
  };
}

/** Three base64url segments: a JWS compact serialization. Anything else may be an opaque token. */
export function looksLikeJwt(token: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token);
}
