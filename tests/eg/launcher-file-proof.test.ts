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
import { connectionFileVouch, isLauncherTempFile, launcherFilesVouch } from '../../src/kernels/lifecycle/launcher-file-proof';
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

/**
 * Kernelspecs without `{connection_file}` (EG's python_distributed) and EG's R launcher write a temporary
 * file of their own; with TMPDIR set to the kernel's directory it is `<dir>/kernel-<id>_*.json` (Python's
 * mkstemp) or `<dir>/RtmpXXXXXX/kernel-<id>_*.json` (R's session directory). Only files of THIS kernel id
 * count, under the same rules as the connection file.
 */
describe('launcherFilesVouch', () => {
  const OTHER = '9c1e4b7a-2f3d-4a5b-8c6d-7e8f9a0b1c2d';
  /** The kernel's directory (0700) with the given files (0600) and nothing else: no c.json. */
  function tempDir(files: Record<string, object | string> = {}): string {
    const dir = fs.mkdtempSync(path.join(tmp, 'kt-'));
    fs.chmodSync(dir, 0o700);
    for (const [name, content] of Object.entries(files)) {
      fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true, mode: 0o700 });
      fs.writeFileSync(path.join(dir, name), typeof content === 'string' ? content : JSON.stringify(content), { mode: 0o600 });
    }
    return dir;
  }
  const stale = { ...FILE_INFO, key: 'a-stale-key-of-an-earlier-launch', hb_port: 41099 };

  test("names: only kernel-<this id>_<mkstemp or tempfile characters>.json", () => {
    expect(isLauncherTempFile(KID, `kernel-${KID}_x8k2_q0z.json`)).toBe(true);
    expect(isLauncherTempFile(KID, `kernel-${KID}_1f2e3d4c5b6a.json`)).toBe(true);
    for (const name of [`kernel-${OTHER}_x8k2_q0z.json`, `kernel-${KID}-x8k2q0z.json`, `kernel-${KID}_.json`, `kernel-${KID}_x8k2q0z.json.bak`, `xkernel-${KID}_x8k2q0z.json`, `kernel-${KID}_a/b.json`, 'c.json']) {
      expect([name, isLauncherTempFile(KID, name)]).toEqual([name, false]);
    }
  });

  test("vouches for a payload that matches the launcher's temporary file for this kernel, with no {connection_file}", async () => {
    const dir = tempDir({ [`kernel-${KID}_x8k2q0zp.json`]: FILE_INFO });
    expect(await launcherFilesVouch({ dir, kernelId: KID }, UID, { graceMs: 0 })(REPORT)).toBeUndefined();
  });

  test("another kernel's file, or a name EG does not make, proves nothing even with the payload's key and ports", async () => {
    const dir = tempDir({ [`kernel-${OTHER}_x8k2q0zp.json`]: FILE_INFO, [`kernel-${KID}-x8k2q0zp.json`]: FILE_INFO, [`kernel-${KID}.json`]: FILE_INFO });
    expect(await launcherFilesVouch({ dir, kernelId: KID }, UID, { graceMs: 0 })(REPORT)).toBe(`no connection file of the kernel's launcher (kernel-${KID}_*.json) is in its directory`);
    // The same file, named for this kernel, is proof: the refusal above was the name.
    fs.renameSync(path.join(dir, `kernel-${OTHER}_x8k2q0zp.json`), path.join(dir, `kernel-${KID}_x8k2q0zp.json`));
    expect(await launcherFilesVouch({ dir, kernelId: KID }, UID, { graceMs: 0 })(REPORT)).toBeUndefined();
  });

  test('a matching file that is a symlink, of another uid, or open to others is refused', async () => {
    const name = `kernel-${KID}_x8k2q0zp.json`;
    const linked = tempDir({ 'real.json': FILE_INFO });
    fs.symlinkSync('real.json', path.join(linked, name));
    expect(await launcherFilesVouch({ dir: linked, kernelId: KID }, UID, { graceMs: 0 })(REPORT)).toBe('its connection file is a symlink');

    const foreign = tempDir({ [name]: FILE_INFO });
    fs.chownSync(path.join(foreign, name), UID + 4242, UID + 4242);
    expect(await launcherFilesVouch({ dir: foreign, kernelId: KID }, UID, { graceMs: 0 })(REPORT)).toBe(`its connection file belongs to uid ${UID + 4242}, not to the kernel's user`);

    const open = tempDir({ [name]: FILE_INFO });
    fs.chmodSync(path.join(open, name), 0o604);
    expect(await launcherFilesVouch({ dir: open, kernelId: KID }, UID, { graceMs: 0 })(REPORT)).toBe('its connection file is open to others (mode 604)');
  });

  test('of several files for this kernel, any one that matches is proof; none matching names each', async () => {
    const dir = tempDir({ [`kernel-${KID}_aaaaaaaa.json`]: stale, [`kernel-${KID}_bbbbbbbb.json`]: FILE_INFO });
    expect(await launcherFilesVouch({ dir, kernelId: KID }, UID, { graceMs: 0 })(REPORT)).toBeUndefined();
    const none = await launcherFilesVouch({ dir, kernelId: KID }, UID, { graceMs: 0 })({ ...REPORT, key: 'forged' });
    expect(none).toBe(
      `none of its 2 connection files matches (kernel-${KID}_aaaaaaaa.json: its key and ports differ from those in the kernel's connection file; kernel-${KID}_bbbbbbbb.json: its key and ports differ from those in the kernel's connection file)`,
    );
  });

  test('with {connection_file} too, a temporary file that matches is proof when c.json does not (EG\'s R launcher ignores it)', async () => {
    const { dir, file } = kernelDir(stale);
    fs.mkdirSync(path.join(dir, 'RtmpQx7Zk2'), { mode: 0o700 });
    fs.writeFileSync(path.join(dir, 'RtmpQx7Zk2', `kernel-${KID}_3f9a1c2e5b7d.json`), JSON.stringify(FILE_INFO), { mode: 0o600 });
    expect(await launcherFilesVouch({ dir, kernelId: KID, connectionFile: file }, UID, { graceMs: 0 })(REPORT)).toBeUndefined();
    // The old proof, c.json alone, would not have believed it.
    expect(await connectionFileVouch(file, UID, { graceMs: 0 })(REPORT)).toContain('differ');
  });

  test("R's session directory counts only as R makes it: a real directory of the kernel's uid, closed to others", async () => {
    const rfile = `kernel-${KID}_3f9a1c2e5b7d.json`;
    const open = tempDir({ [`RtmpQx7Zk2/${rfile}`]: FILE_INFO });
    fs.chmodSync(path.join(open, 'RtmpQx7Zk2'), 0o755);
    expect(await launcherFilesVouch({ dir: open, kernelId: KID }, UID, { graceMs: 0 })(REPORT)).toContain('no connection file');

    const foreign = tempDir({ [`RtmpQx7Zk2/${rfile}`]: FILE_INFO });
    fs.chownSync(path.join(foreign, 'RtmpQx7Zk2'), UID + 4242, UID + 4242);
    expect(await launcherFilesVouch({ dir: foreign, kernelId: KID }, UID, { graceMs: 0 })(REPORT)).toContain('no connection file');

    const linked = tempDir();
    const elsewhere = fs.mkdtempSync(path.join(tmp, 'elsewhere-'));
    fs.chmodSync(elsewhere, 0o700);
    fs.writeFileSync(path.join(elsewhere, rfile), JSON.stringify(FILE_INFO), { mode: 0o600 });
    fs.symlinkSync(elsewhere, path.join(linked, 'RtmpQx7Zk2'));
    expect(await launcherFilesVouch({ dir: linked, kernelId: KID }, UID, { graceMs: 0 })(REPORT)).toContain('no connection file');

    // Only one level down, and only a directory named as R names it.
    const deep = tempDir({ [`RtmpQx7Zk2/sub/${rfile}`]: FILE_INFO, [`notRtmp/${rfile}`]: FILE_INFO });
    expect(await launcherFilesVouch({ dir: deep, kernelId: KID }, UID, { graceMs: 0 })(REPORT)).toContain('no connection file');
  });

  test('a temporary file not there yet, or being rewritten, is waited for; the kernel\'s directory gone is no proof', async () => {
    const dir = tempDir();
    setTimeout(() => fs.writeFileSync(path.join(dir, `kernel-${KID}_late0000.json`), JSON.stringify(FILE_INFO), { mode: 0o600 }), 300);
    expect(await launcherFilesVouch({ dir, kernelId: KID }, UID, { graceMs: 2000 })(REPORT)).toBeUndefined();

    const gone = tempDir();
    fs.rmSync(gone, { recursive: true });
    expect(await launcherFilesVouch({ dir: gone, kernelId: KID }, UID, { graceMs: 200 })(REPORT)).toBe("the kernel's runtime directory is gone");
  });

  test('at most 16 files are read per look: the kernel\'s own user cannot make the proof read without end', async () => {
    const files: Record<string, object> = {};
    for (let i = 0; i < 20; i++) files[`kernel-${KID}_a${String(i).padStart(2, '0')}.json`] = stale;
    files[`kernel-${KID}_zzzzzzzz.json`] = FILE_INFO;
    const dir = tempDir(files);
    expect(await launcherFilesVouch({ dir, kernelId: KID }, UID, { graceMs: 0 })(REPORT)).toMatch(/^none of its 16 connection files matches/);
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
