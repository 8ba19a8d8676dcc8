/**
 * The second proof of an Enterprise Gateway launcher's payload on the local backend: when the sender's
 * uid can no longer be read (it closed its socket at once, as EG's launchers do), the payload is
 * accepted only if its key and ports equal those of the kernel's connection file, and that file counts
 * only as a regular file of the kernel's uid that no one else may read. A mismatching or unproven
 * payload leaves the launch pending; a sender positively identified as another uid stays refused.
 * Real sockets and /proc/net/tcp, real files.
 */
import { constants, createCipheriv, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { connectionFileVouch } from '../../src/kernels/lifecycle/launcher-file-proof';
import { generateResponseKeys, loopbackPeerUid, loopbackUidCheck, ResponseListener, type LauncherReport, type PayloadVouch, type PeerCheck, type RsaKeys } from '../../src/kernels/lifecycle/response-address';

const KID = '0d5f7a2c-93b1-4e6a-b0c4-5a8e1f3d7c21';
const UID = process.getuid!();
const FILE_INFO = { ip: '0.0.0.0', transport: 'tcp', signature_scheme: 'hmac-sha256', key: 'f3b0c2a8-1e4d-4b6a-9c7f-2d8e5a1b3c4d', shell_port: 41001, iopub_port: 41002, stdin_port: 41003, control_port: 41004, hb_port: 41005 };
const REPORT: LauncherReport = { ip: '0.0.0.0', key: FILE_INFO.key, ports: { shell_port: 41001, iopub_port: 41002, stdin_port: 41003, control_port: 41004, hb_port: 41005 }, commPort: 41006, version: 1 };

let tmp: string;
let keys: RsaKeys;

beforeAll(async () => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-eg-proof-'));
  keys = await generateResponseKeys();
});
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

/** A kernel directory (0700) with `c.json` holding `content` (0600), as runtime-dir.ts and the launcher leave it. */
function kernelDir(content: object | string = FILE_INFO): { dir: string; file: string } {
  const dir = fs.mkdtempSync(path.join(tmp, 'k-'));
  fs.chmodSync(dir, 0o700);
  const file = path.join(dir, 'c.json');
  fs.writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content), { mode: 0o600 });
  return { dir, file };
}

describe('connectionFileVouch', () => {
  test("vouches for a payload whose key and ports equal the kernel's connection file", async () => {
    const { file } = kernelDir();
    expect(await connectionFileVouch(file, UID)(REPORT)).toBeUndefined();
  });

  test('another key, or one port off, is no proof', async () => {
    const { file } = kernelDir();
    const vouch = connectionFileVouch(file, UID, { graceMs: 0 });
    expect(await vouch({ ...REPORT, key: 'guessed' })).toBe("its key and ports differ from those in the kernel's connection file");
    expect(await vouch({ ...REPORT, key: `${FILE_INFO.key}x` })).toContain('differ');
    expect(await vouch({ ...REPORT, ports: { ...REPORT.ports, hb_port: 41099 } })).toContain('differ');
  });

  test("a file of another uid is not trusted, even with the payload's key and ports", async () => {
    const { file } = kernelDir();
    expect(await connectionFileVouch(file, UID + 4242, { graceMs: 0 })(REPORT)).toBe(`its connection file belongs to uid ${UID}, not to the kernel's user`);
  });

  test('a symlink is not trusted, whether it leads into the directory or out of it', async () => {
    const inside = kernelDir();
    fs.renameSync(inside.file, path.join(inside.dir, 'real.json'));
    fs.symlinkSync('real.json', inside.file);
    expect(await connectionFileVouch(inside.file, UID, { graceMs: 0 })(REPORT)).toBe('its connection file is a symlink');

    const outside = kernelDir();
    const elsewhere = path.join(tmp, `elsewhere-${randomBytes(3).toString('hex')}.json`);
    fs.writeFileSync(elsewhere, JSON.stringify(FILE_INFO), { mode: 0o600 });
    fs.rmSync(outside.file);
    fs.symlinkSync(elsewhere, outside.file);
    expect(await connectionFileVouch(outside.file, UID, { graceMs: 0 })(REPORT)).toMatch(/^its connection file is not trusted \(.* outside /);
  });

  test('a file others may read or write is not trusted; nor is a FIFO or an oversized file', async () => {
    const open = kernelDir();
    fs.chmodSync(open.file, 0o640);
    expect(await connectionFileVouch(open.file, UID, { graceMs: 0 })(REPORT)).toBe('its connection file is open to others (mode 640)');

    const fifo = kernelDir();
    fs.rmSync(fifo.file);
    execFileSync('mkfifo', ['-m', '600', fifo.file]);
    expect(await connectionFileVouch(fifo.file, UID, { graceMs: 0 })(REPORT)).toContain('is not a regular file');

    const big = kernelDir({ ...FILE_INFO, padding: 'x'.repeat(20_000) });
    expect(await connectionFileVouch(big.file, UID, { graceMs: 0 })(REPORT)).toContain('limit');
  });

  test('a file being rewritten (removed, then written anew, as ipykernel does) is waited for; one that stays missing is no proof', async () => {
    const { file } = kernelDir();
    fs.rmSync(file);
    setTimeout(() => fs.writeFileSync(file, JSON.stringify(FILE_INFO), { mode: 0o600 }), 300);
    expect(await connectionFileVouch(file, UID, { graceMs: 2000 })(REPORT)).toBeUndefined();

    const gone = kernelDir();
    fs.rmSync(gone.file);
    expect(await connectionFileVouch(gone.file, UID, { graceMs: 200 })(REPORT)).toBe('its connection file is missing or unreadable');
    const empty = kernelDir('');
    expect(await connectionFileVouch(empty.file, UID, { graceMs: 200 })(REPORT)).toBe('its connection file is missing or unreadable');
  });
});

/** A version-1 payload of `info` for kernel KID, as EG's launchers make it. */
function seal(info: object): string {
  const aes = randomBytes(16);
  const c = createCipheriv('aes-128-ecb', aes, null);
  const connInfo = Buffer.concat([c.update(JSON.stringify({ kernel_id: KID, comm_port: 41006, ...info })), c.final()]).toString('base64');
  const pub = createPublicKey({ key: Buffer.from(keys.publicKey, 'base64'), format: 'der', type: 'spki' });
  const key = publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_PADDING }, aes).toString('base64');
  return Buffer.from(JSON.stringify({ version: 1, key, conn_info: connInfo })).toString('base64');
}

/** Connects, sends and closes at once, as EG's launch_ipykernel.py does; resolves once the socket is closed. */
function sendAndClose(l: ResponseListener, payload: string): Promise<void> {
  const [host, port] = l.address.split(':');
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port: Number(port) }, () => sock.end(payload));
    sock.on('error', reject);
    sock.on('close', () => resolve());
  });
}

/** Sends and holds the connection open for a while: the listener can read who holds it. */
function sendAndHold(l: ResponseListener, payload: string): Promise<void> {
  const [host, port] = l.address.split(':');
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host, port: Number(port) }, () => {
      sock.write(payload);
      setTimeout(() => sock.end(), 300);
    });
    sock.on('error', reject);
    sock.on('close', () => resolve());
  });
}

/**
 * The real loopback check, run once the sender has closed (the launcher is faster than the listener):
 * the socket is then orphaned, and /proc/net/tcp no longer tells its uid.
 */
function lateUidCheck(uid: number, closed: Promise<void>[]): PeerCheck {
  return async (peer, listenerPort) => {
    await Promise.all(closed);
    return loopbackUidCheck(uid)(peer, listenerPort);
  };
}

async function settledWithin(l: ResponseListener, ms: number): Promise<string> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([l.report.then(() => 'accepted', (e: Error) => `failed: ${e.message}`), new Promise<string>((r) => (timer = setTimeout(() => r('pending'), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

describe('a response address on loopback', () => {
  test('a sender that closed at once has no uid to tell: loopbackPeerUid says so instead of reporting uid 0', async () => {
    const server = net.createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const serverPort = (server.address() as net.AddressInfo).port;
    const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
    const client = net.connect({ host: '127.0.0.1', port: serverPort });
    await new Promise((r) => client.once('connect', r));
    const clientPort = client.localPort!;
    await accepted;
    expect(await loopbackPeerUid(clientPort, serverPort)).toBe(UID); // held open: its owner is listed
    client.destroy();
    await new Promise((r) => setTimeout(r, 100));
    expect(await loopbackPeerUid(clientPort, serverPort)).toBeUndefined(); // orphaned: uid 0 and inode 0 in the table
    server.close();
    (await accepted).destroy();
  });

  test("a payload from a sender whose uid is gone is accepted when it matches the kernel's connection file", async () => {
    const { file } = kernelDir();
    const closed: Promise<void>[] = [];
    const l = await ResponseListener.open(keys, KID, { bind: '127.0.0.1', advertised: '127.0.0.1', authenticate: lateUidCheck(UID, closed), vouch: connectionFileVouch(file, UID) });
    try {
      closed.push(sendAndClose(l, seal(FILE_INFO)));
      const report = await l.report;
      expect([report.key, report.ports.hb_port, report.commPort, l.proof]).toEqual([FILE_INFO.key, 41005, 41006, 'payload']);
    } finally {
      await l.close();
    }
  });

  test('from such a sender a mismatching key, or garbage, is refused and leaves the launch pending; the real launcher is still accepted after', async () => {
    const { file } = kernelDir();
    const closed: Promise<void>[] = [];
    const l = await ResponseListener.open(keys, KID, { bind: '127.0.0.1', advertised: '127.0.0.1', authenticate: lateUidCheck(UID, closed), vouch: connectionFileVouch(file, UID, { graceMs: 0 }) });
    try {
      closed.push(sendAndClose(l, seal({ ...FILE_INFO, key: 'forged-by-someone-who-cannot-read-the-file' })));
      expect(await settledWithin(l, 1000)).toBe('pending');
      expect(l.rejection).toBe("the payload's sender had closed its connection before its uid could be read, and its key and ports differ from those in the kernel's connection file");
      closed.push(sendAndClose(l, seal({ ...FILE_INFO, kernel_id: 'another-kernel' })));
      expect(await settledWithin(l, 1000)).toBe('pending');
      expect(l.rejection).toBe('connection info names another kernel');
      closed.push(sendAndClose(l, 'garbage'));
      expect(await settledWithin(l, 1000)).toBe('pending');
      closed.push(sendAndClose(l, seal(FILE_INFO)));
      expect(await settledWithin(l, 3000)).toBe('accepted');
    } finally {
      await l.close();
    }
  });

  test('without a vouch, a sender whose uid is gone is dropped', async () => {
    const closed: Promise<void>[] = [];
    const l = await ResponseListener.open(keys, KID, { bind: '127.0.0.1', advertised: '127.0.0.1', authenticate: lateUidCheck(UID, closed) });
    try {
      closed.push(sendAndClose(l, seal(FILE_INFO)));
      expect(await settledWithin(l, 1000)).toBe('pending');
      expect(l.rejection).toContain('nothing else vouches for it');
    } finally {
      await l.close();
    }
  });

  test('a sender identified as another uid is refused even when its payload matches the connection file', async () => {
    const { file } = kernelDir();
    let vouched = 0;
    const vouch: PayloadVouch = async (r) => {
      vouched++;
      return connectionFileVouch(file, UID)(r);
    };
    // The listener expects a uid that is not this process's: the held-open sender is someone else.
    const l = await ResponseListener.open(keys, KID, { bind: '127.0.0.1', advertised: '127.0.0.1', authenticate: loopbackUidCheck(UID + 4242), vouch });
    try {
      await sendAndHold(l, seal(FILE_INFO));
      expect(await settledWithin(l, 1000)).toBe('pending');
      expect(l.rejection).toBe('a payload came from a process of another user');
      expect(vouched).toBe(0);
    } finally {
      await l.close();
    }
  });

  test("a sender of the kernel's uid needs no file; its bad payload fails the launch at once", async () => {
    const held = await ResponseListener.open(keys, KID, { bind: '127.0.0.1', advertised: '127.0.0.1', authenticate: loopbackUidCheck(UID), vouch: async () => 'never asked' });
    try {
      await sendAndHold(held, seal({ ...FILE_INFO, key: 'not in any file' }));
      expect([(await held.report).key, held.proof]).toEqual(['not in any file', 'peer']);
    } finally {
      await held.close();
    }
    const l = await ResponseListener.open(keys, KID, { bind: '127.0.0.1', advertised: '127.0.0.1', authenticate: loopbackUidCheck(UID), vouch: async () => 'never asked' });
    try {
      await sendAndHold(l, seal({ ...FILE_INFO, kernel_id: 'another-kernel' }));
      expect(await settledWithin(l, 2000)).toBe('failed: connection info names another kernel');
    } finally {
      await l.close();
    }
  });
});
