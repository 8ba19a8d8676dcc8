/**
 * Secrets from files, the container convention: for every secret setting `X`, `X_FILE` names a file
 * holding its value (a Kubernetes Secret volume, a Docker secret), so the secret need not sit in
 * spawngate's environment where every child process would inherit it. Setting both is an error.
 */
import fs from 'node:fs';

/** Settings whose values are secrets (tokens, keys, URLs that may carry passwords). */
export const SECRET_SETTINGS = [
  'SPAWNGATE_HUB_TOKEN',
  'SPAWNGATE_ADMIN_TOKEN',
  'SPAWNGATE_SECRET_KEY',
  'SPAWNGATE_OIDC_CLIENT_SECRET',
  'SPAWNGATE_DATABASE_URL',
  'SPAWNGATE_REDIS_URL',
] as const;

/** Raised by `readSecretFiles`; load.ts turns it into a ConfigError naming the variable. */
export class SecretFileError extends Error {
  override readonly name = 'SecretFileError';
}

/**
 * The values of the `X_FILE` variables that are set, keyed by `X`. One trailing newline is dropped
 * (editors and `echo` add one); an empty or unreadable file is an error naming the variable.
 */
export function readSecretFiles(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of SECRET_SETTINGS) {
    const fileVar = `${key}_FILE`;
    const file = env[fileVar];
    if (file === undefined || file === '') continue;
    if (env[key] !== undefined && env[key] !== '') throw new SecretFileError(`${key} and ${fileVar} are both set; set only one of them`);
    let text: string;
    try {
      text = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new SecretFileError(`${fileVar}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const value = text.replace(/\r?\n$/, '');
    if (value === '') throw new SecretFileError(`${fileVar}: ${file} is empty`);
    out[key] = value;
  }
  return out;
}
