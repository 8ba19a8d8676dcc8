/**
 * Enterprise Gateway's response-address handshake, server side. A launcher started with
 * `{response_address}` and `{public_key}` picks its own kernel ports and key, encrypts that
 * connection information with a fresh AES-128 key (ECB, PKCS#7), encrypts the AES key with our RSA
 * public key (PKCS#1 v1.5), and sends base64(JSON {version: 1, key, conn_info}) to the address, then
 * closes. This module owns the key pair, one listener per launch, decryption and validation.
 */
import { createDecipheriv, generateKeyPair, privateDecrypt, constants, type KeyObject } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import { z } from 'zod';

/** A payload is a few hundred bytes; anything much larger is not a launcher. */
const MAX_PAYLOAD_BYTES = 64 * 1024;

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

/** Decrypts and validates one payload; throws `LauncherPayloadError` saying what was wrong. */
export function decodeLauncherPayload(keys: RsaKeys, data: string, kernelId: string): LauncherReport {
  let outer: unknown;
  try {
    outer = JSON.parse(Buffer.from(data.trim(), 'base64').toString('utf8'));
  } catch {
    throw new LauncherPayloadError('payload is not base64 JSON');
  }
  const o = z.object({ version: z.literal(1), key: z.string().min(1), conn_info: z.string().min(1) }).safeParse(outer);
  if (!o.success) throw new LauncherPayloadError('payload is not a version 1 launcher payload');
  let plain: Buffer;
  try {
    const block = privateDecrypt({ key: keys.privateKey, padding: constants.RSA_NO_PADDING }, Buffer.from(o.data.key, 'base64'));
    const aesKey = rsaPkcs1Unpad(block);
    if (aesKey.length !== 16) throw new LauncherPayloadError('bad key block');
    const decipher = createDecipheriv('aes-128-ecb', aesKey, null);
    plain = Buffer.concat([decipher.update(Buffer.from(o.data.conn_info, 'base64')), decipher.final()]);
  } catch {
    throw new LauncherPayloadError('payload does not decrypt with this launch key');
  }
  let info: unknown;
  try {
    info = JSON.parse(plain.toString('utf8'));
  } catch {
    throw new LauncherPayloadError('connection info is not JSON');
  }
  const c = connectionSchema.safeParse(info);
  if (!c.success) throw new LauncherPayloadError(`connection info is invalid: ${c.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  if (c.data.kernel_id !== kernelId) throw new LauncherPayloadError('connection info names another kernel');
  const { shell_port, iopub_port, stdin_port, control_port, hb_port } = c.data;
  return { ip: c.data.ip, key: c.data.key, ports: { shell_port, iopub_port, stdin_port, control_port, hb_port }, commPort: c.data.comm_port ?? 0 };
}

/**
 * The uid owning the client end of a loopback TCP connection (Linux `/proc/net/tcp`: local address
 * `127.0.0.1:<peerPort>` talking to `:<serverPort>`), or undefined when it cannot be told.
 */
export async function loopbackPeerUid(peerPort: number, serverPort: number): Promise<number | undefined> {
  const table = await fsp.readFile('/proc/net/tcp', 'utf8').catch(() => '');
  const hex = (n: number): string => n.toString(16).toUpperCase().padStart(4, '0');
  for (const line of table.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1]?.endsWith(`:${hex(peerPort)}`) && f[2]?.endsWith(`:${hex(serverPort)}`)) return Number(f[7]);
  }
  return undefined;
}

/**
 * One launch's response address: a TCP listener that resolves `report` with the first payload that
 * decrypts and names this kernel. Anything else that connects is dropped without an answer.
 */
export class ResponseListener {
  readonly report: Promise<LauncherReport>;
  private resolveReport!: (r: LauncherReport) => void;
  private lastError: string | undefined;

  private constructor(
    private readonly server: net.Server,
    readonly address: string,
  ) {
    this.report = new Promise((resolve) => (this.resolveReport = resolve));
  }

  /** Why the last connection was dropped, for a launch that times out. */
  get rejection(): string | undefined {
    return this.lastError;
  }

  /**
   * `peerUid`: accept payloads only from processes of this uid (loopback listeners). The public key
   * and kernel id are on the launcher's command line, readable by every local user: without this
   * check another user could answer first and point spawngate at a kernel of their own.
   */
  static async open(keys: RsaKeys, kernelId: string, host: string, opts: { advertised?: string; peerUid?: number } = {}): Promise<ResponseListener> {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, host, () => resolve());
    });
    const { port } = server.address() as net.AddressInfo;
    const listener = new ResponseListener(server, `${opts.advertised ?? host}:${port}`);
    server.on('connection', (sock) => {
      const chunks: Buffer[] = [];
      let size = 0;
      sock.setTimeout(10_000, () => sock.destroy());
      sock.on('data', (d: Buffer) => {
        size += d.length;
        if (size > MAX_PAYLOAD_BYTES) sock.destroy();
        else chunks.push(d);
      });
      sock.on('error', () => undefined);
      const peerPort = sock.remotePort;
      // Read while the peer is connected: its /proc/net/tcp entry goes once it closes.
      const peerUid = opts.peerUid === undefined || peerPort === undefined ? Promise.resolve(opts.peerUid) : loopbackPeerUid(peerPort, port);
      sock.on('end', () => {
        sock.end();
        void peerUid.then((uid) => {
          if (uid !== opts.peerUid) {
            listener.lastError = 'a payload came from a process of another user';
            return;
          }
          try {
            listener.resolveReport(decodeLauncherPayload(keys, Buffer.concat(chunks).toString('utf8'), kernelId));
          } catch (err) {
            listener.lastError = (err as Error).message;
          }
        });
      });
    });
    return listener;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** Sends one request (`{signum}` or `{shutdown}`) to a launcher's communication port, as EG does. */
export function sendLauncherRequest(host: string, commPort: number, request: { signum: number } | { shutdown: 1 }, timeoutMs = 5000): Promise<void> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port: commPort });
    sock.setTimeout(timeoutMs, () => sock.destroy(new Error(`launcher communication port ${host}:${commPort} timed out`)));
    sock.once('error', reject);
    sock.once('connect', () => sock.end(JSON.stringify(request)));
    sock.once('close', (hadError) => {
      if (!hadError) resolve();
    });
  });
}
