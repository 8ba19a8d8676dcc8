/**
 * The YAML `oidc:` section: bearer tokens from an OpenID Provider (Keycloak, Cognito, …) for admins and
 * API callers, and the optional mapping of IdP groups to experiments. SPAWNGATE_OIDC_ISSUER,
 * SPAWNGATE_OIDC_AUDIENCE and SPAWNGATE_OIDC_CLIENT_SECRET override or complete it from the environment.
 */
import { z } from 'zod';

/** Asymmetric algorithms only: accepting HS* would let anyone holding the public key sign tokens. */
export const ASYMMETRIC_JWS_ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

const claimPath = z
  .string()
  .regex(/^[A-Za-z0-9_:/.-]+$/, 'a claim name, or a dotted path such as realm_access.roles')
  .max(200);

export const oidcConfigSchema = z
  .object({
    issuer: z.url().optional().describe('issuer URL; discovery reads <issuer>/.well-known/openid-configuration (or SPAWNGATE_OIDC_ISSUER). Unset: OIDC is off'),
    audience: z
      .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
      .optional()
      .describe("accepted 'aud' value(s) of access tokens (or SPAWNGATE_OIDC_AUDIENCE); required when issuer is set"),
    username_claim: claimPath.default('preferred_username').describe('claim holding the user name (validated like hub user names)'),
    groups_claim: claimPath.default('groups').describe('claim holding the user\'s groups (array or space-separated string)'),
    admin_claim: claimPath.default('groups').describe('claim whose values grant admin rights (e.g. groups, roles, realm_access.roles)'),
    admin_values: z.array(z.string().min(1)).default([]).describe('values of admin_claim that make the caller an admin; empty: no OIDC admins'),
    group_experiments: z
      .record(z.string().min(1), z.union([z.string().min(1), z.array(z.string().min(1))]))
      .default({})
      .describe("IdP group → experiment name(s); when set, each caller's 'oidc' memberships follow their groups"),
    group_sync_cache_seconds: z
      .number()
      .min(0)
      .max(86400)
      .default(300)
      .describe('seconds an unchanged group set is trusted before the memberships are checked again'),
    algorithms: z
      .array(z.enum(ASYMMETRIC_JWS_ALGORITHMS))
      .min(1)
      .default([...ASYMMETRIC_JWS_ALGORITHMS])
      .describe('accepted JWS algorithms (asymmetric only)'),
    token_type: z
      .string()
      .min(1)
      .optional()
      .describe("require this JWT 'typ' header, e.g. at+jwt (RFC 9068 access tokens: an ID token is then refused); unset: any"),
    clock_skew_seconds: z.number().int().min(0).max(600).default(30).describe('tolerance for exp/nbf/iat, seconds'),
    jwks_cache_seconds: z.number().int().min(1).max(86400).default(600).describe('seconds the signing keys are cached; an unknown kid refetches sooner'),
    jwks_cooldown_seconds: z.number().min(0).max(3600).default(30).describe('least seconds between two key-set fetches (an unknown kid cannot force a fetch storm)'),
    introspection: z
      .boolean()
      .default(false)
      .describe('check tokens that are not JWTs at the RFC 7662 introspection endpoint (needs client_id and SPAWNGATE_OIDC_CLIENT_SECRET)'),
    client_id: z.string().min(1).optional().describe('client id spawngate authenticates with for introspection'),
    introspection_cache_seconds: z.number().min(0).max(3600).default(60).describe('seconds an introspection answer is reused (never past the token\'s exp)'),
    allow_insecure_http: z.boolean().default(false).describe('allow an http:// issuer (tests and local development only)'),
  })
  .strict();
export type OidcConfig = z.infer<typeof oidcConfigSchema>;
