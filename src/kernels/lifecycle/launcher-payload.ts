/**
 * What an Enterprise Gateway launcher sends to its response address, decoded and validated. Two
 * formats exist:
 * - version 1 (EG 2.0 and later): base64(JSON {version: 1, key, conn_info}); `key` is a fresh AES-128
 *   key wrapped with our RSA public key (PKCS#1 v1.5), `conn_info` the connection JSON encrypted with
 *   it (ECB, PKCS#7). The connection JSON names the kernel (`kernel_id`).
 * - version 0 (EG 1.x launchers): base64 of the connection JSON encrypted with AES-128-ECB under the
 *   first 16 characters of the kernel id, right-padded with '%'; it does not name the kernel. The
 *   kernel id is no secret (it is on the launcher's command line and in the user's kernel list), so
 *   this format hides nothing: the kernel's HMAC key travels readable to anyone who sees the traffic.
 */
import { createDecipheriv, generateKeyPair, privateDecrypt, constants, type KeyObject } from 'node:crypto';
import { z } from 'zod';

export interface RsaKeys {
  privateKey: KeyObject;
  /** The SubjectPublicKeyInfo DER in base64: a PEM body without its armour lines, as EG hands it out. */
  publicKey: string;
}

export function generateResponseKeys(): Promise<RsaKeys> {
  return new Promise((resolve, reject) => {
    // 2048 bits: it only wraps a 16-byte AES key, but launchers accept any size and 1024 is weak.
    generateKeyPair('rsa', { modulusLength: 2048 }, (err, publicKey, privateKey) => {
      if (err) return reject(err);
      resolve({ privateKey, publicKey: publicKey.export({ type: 'spki', format: 'der' }).toString('base64') });
    });
  });
}

const port = z.number().int().min(1).max(65535);
const connectionSchema = z.looseObject({
  kernel_id: z.string(),
  ip: z.string().max(255).optional(),
  transport: z.literal('tcp').optional(),
  key: z.string().min(1).max(1024),
  signature_scheme: z.literal('hmac-sha256').optional(),
  shell_port: port,
  iopub_port: port,
  stdin_port: port,
  control_port: port,
  hb_port: port,
  comm_port: z.number().int().min(0).max(65535).optional(),
  pid: z.number().int().optional(),
});

/** What a launcher reported: where its kernel listens, its HMAC key, and its communication port. */
export interface LauncherReport {
  ip: string | undefined;
  key: string;
  ports: { shell_port: number; iopub_port: number; stdin_port: number; control_port: number; hb_port: number };
  /** 0 when the launcher has no communication port. */
  commPort: number;
  /** The payload format: 0 (legacy, unencrypted in effect) or 1. */
  version: 0 | 1;
}

export class LauncherPayloadError extends Error {
  override readonly name = 'LauncherPayloadError';
}

/**
 * PKCS#1 v1.5 type-2 unpadding after a raw RSA decryption. Node refuses PKCS#1 v1.5 private
 * decryption (CVE-2023-46809, a timing oracle); a listener that answers nothing either way gives no
 * oracle, and the result is then checked for the one length an AES-128 key has.
 */
function rsaPkcs1Unpad(em: Buffer): Buffer {
  if (em.length < 11 || em[0] !== 0 || em[1] !== 2) throw new LauncherPayloadError('bad key block');
  const sep = em.indexOf(0, 2);
  if (sep < 10) throw new LauncherPayloadError('bad key block');
  return em.subarray(sep + 1);
}

function aesEcb(key: Buffer, data: Buffer, pkcs7: boolean): Buffer {
  const decipher = createDecipheriv('aes-128-ecb', key, null);
  decipher.setAutoPadding(pkcs7);
  return Buffer.concat([decipher.update(data), decipher.final()]);
}

function version1(keys: RsaKeys, outer: unknown): string | undefined {
  const o = z.object({ version: z.literal(1), key: z.string().min(1), conn_info: z.string().min(1) }).safeParse(outer);
  if (!o.success) return undefined;
  try {
    const block = privateDecrypt({ key: keys.privateKey, padding: constants.RSA_NO_PADDING }, Buffer.from(o.data.key, 'base64'));
    const aesKey = rsaPkcs1Unpad(block);
    if (aesKey.length !== 16) throw new LauncherPayloadError('bad key block');
    return aesEcb(aesKey, Buffer.from(o.data.conn_info, 'base64'), true).toString('utf8');
  } catch {
    throw new LauncherPayloadError('payload does not decrypt with this launch key');
  }
}

/** The version-0 plaintext, or undefined when `raw` is not a version-0 payload of this kernel. */
function version0(raw: Buffer, kernelId: string): string | undefined {
  const key = Buffer.from(kernelId.slice(0, 16), 'utf8');
  if (key.length !== 16 || raw.length === 0 || raw.length % 16 !== 0) return undefined;
  try {
    const text = aesEcb(key, raw, false).toString('utf8');
    // The launcher padded with '%' after the closing brace of its JSON.
    const end = text.lastIndexOf('}');
    return end < 0 || !/^%*$/.test(text.slice(end + 1)) ? undefined : text.slice(0, end + 1);
  } catch {
    return undefined;
  }
}

/** Decrypts and validates one payload of launch `kernelId`; throws `LauncherPayloadError` saying what was wrong. */
export function decodeLauncherPayload(keys: RsaKeys, data: string, kernelId: string): LauncherReport {
  const raw = Buffer.from(data.trim(), 'base64');
  let outer: unknown;
  try {
    outer = JSON.parse(raw.toString('utf8'));
  } catch {
    outer = undefined;
  }
  let plain = outer === undefined ? undefined : version1(keys, outer);
  let version: 0 | 1 = 1;
  if (plain === undefined) {
    plain = version0(raw, kernelId);
    if (plain === undefined) throw new LauncherPayloadError('payload is neither a version 1 launcher payload nor a version 0 one of this kernel');
    version = 0;
  }
  let info: unknown;
  try {
    info = JSON.parse(plain);
  } catch {
    throw new LauncherPayloadError('connection info is not JSON');
  }
  // Version 0 does not name the kernel: the key derived from its id is what ties it to this launch.
  if (version === 0 && info && typeof info === 'object' && !('kernel_id' in info)) info = { ...info, kernel_id: kernelId };
  const c = connectionSchema.safeParse(info);
  if (!c.success) throw new LauncherPayloadError(`connection info is invalid: ${c.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  if (c.data.kernel_id !== kernelId) throw new LauncherPayloadError('connection info names another kernel');
  const { shell_port, iopub_port, stdin_port, control_port, hb_port } = c.data;
  return { ip: c.data.ip, key: c.data.key, ports: { shell_port, iopub_port, stdin_port, control_port, hb_port }, commPort: c.data.comm_port ?? 0, version };
}
