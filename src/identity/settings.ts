/**
 * The effective OIDC settings: the YAML `oidc:` section completed by SPAWNGATE_OIDC_* variables, with
 * the cross-field rules zod cannot express per field. `undefined` when OIDC is off (no issuer).
 */
import { ConfigError, type Config, type OidcConfig } from '../config';

export interface OidcSettings extends Omit<OidcConfig, 'issuer' | 'audience' | 'group_experiments'> {
  issuer: string;
  audience: string[];
  clientSecret?: string;
  /** Group name → experiment names. */
  groupExperiments: Map<string, string[]>;
}

export function resolveOidcSettings(config: Pick<Config, 'env' | 'file'>): OidcSettings | undefined {
  const file = config.file.oidc;
  const issuer = config.env.SPAWNGATE_OIDC_ISSUER ?? file.issuer;
  if (!issuer) return undefined;
  const audienceRaw = config.env.SPAWNGATE_OIDC_AUDIENCE?.split(',') ?? file.audience;
  const audience = (typeof audienceRaw === 'string' ? [audienceRaw] : (audienceRaw ?? [])).map((a) => a.trim()).filter(Boolean);
  if (audience.length === 0) {
    // Without an audience check any token the IdP minted for any other client would be accepted here.
    throw new ConfigError('SPAWNGATE_OIDC_AUDIENCE: an audience is required when an OIDC issuer is configured (or set oidc.audience)');
  }
  if (new URL(issuer).protocol !== 'https:' && !file.allow_insecure_http) {
    throw new ConfigError(`SPAWNGATE_OIDC_ISSUER: ${issuer} is not https (set oidc.allow_insecure_http for local development only)`);
  }
  const clientSecret = config.env.SPAWNGATE_OIDC_CLIENT_SECRET;
  if (file.introspection && (!file.client_id || !clientSecret)) {
    throw new ConfigError('SPAWNGATE_OIDC_CLIENT_SECRET: oidc.introspection needs oidc.client_id and SPAWNGATE_OIDC_CLIENT_SECRET');
  }
  const groupExperiments = new Map<string, string[]>();
  for (const [group, target] of Object.entries(file.group_experiments)) {
    groupExperiments.set(group, typeof target === 'string' ? [target] : target);
  }
  const { issuer: _i, audience: _a, group_experiments: _g, ...rest } = file;
  return { ...rest, issuer, audience, clientSecret, groupExperiments };
}
