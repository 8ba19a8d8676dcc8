/**
 * Encryption at rest for kernel connection keys: AES-256-GCM with a random 96-bit IV per value,
 * stored as `v1.<iv>.<tag>.<ciphertext>` (base64url). The key comes from SPAWNGATE_SECRET_KEY or, for the
 * embedded default, a file generated once in the data directory (mode 0600).
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export class SecretBoxError extends Error {
  override readonly name = 'SecretBoxError';
}

export interface SecretBox {
  seal(plaintext: string): string;
  open(sealed: string): string;
}

export function createSecretBox(key: Buffer): SecretBox {
  if (key.length !== 32) throw new SecretBoxError(`the secret key must be 32 bytes, got ${key.length}`);
  return {
    seal(plaintext) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ct.toString('base64url')].join('.');
    },
    open(sealed) {
      const [v, iv, tag, ct] = sealed.split('.');
      if (v !== 'v1' || !iv || !tag || ct === undefined) throw new SecretBoxError('not a sealed value');
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
        decipher.setAuthTag(Buffer.from(tag, 'base64url'));
        return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString('utf8');
      } catch (err) {
        throw new SecretBoxError('cannot decrypt: wrong SPAWNGATE_SECRET_KEY or tampered value', { cause: err });
      }
    },
  };
}

/** The configured key (base64 of 32 bytes), or the data directory's generated one. */
export function loadSecretKey(opts: { configured?: string; dataDir: string }): Buffer {
  if (opts.configured) {
    const key = Buffer.from(opts.configured, opts.configured.includes('-') || opts.configured.includes('_') ? 'base64url' : 'base64');
    if (key.length !== 32) throw new SecretBoxError(`SPAWNGATE_SECRET_KEY must decode to 32 bytes, got ${key.length}`);
    return key;
  }
  const file = path.join(opts.dataDir, 'secret.key');
  try {
    fs.writeFileSync(file, randomBytes(32).toString('base64'), { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const key = Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64');
  if (key.length !== 32) throw new SecretBoxError(`${file} does not hold a 32-byte key`);
  return key;
}
