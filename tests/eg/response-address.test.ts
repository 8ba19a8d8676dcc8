/**
 * Enterprise Gateway kernelspecs on the local backend against real ipykernel: every EG argv
 * placeholder is substituted, a launcher of our own (tests/eg/eg_launcher.py, written from EG's
 * response-address protocol) reports its connection info encrypted to spawngate's public key, and
 * interrupts and shutdown go through the launcher's communication port. Process proxy classes of
 * other backends are refused naming the class; `GET /api` carries EG's `gateway_version`. A retried
 * launch job adopts a kernel whose launcher reported and replaces one whose launcher had not;
 * version-0 payloads are decoded and accepted from local kernels only; the listener believes the
 * peer (uid, or a container's address), not the payload (except a loopback sender whose uid is gone,
 * vouched for by the kernel's connection file: launcher-file-proof.test.ts).
 */
import { constants, createCipheriv, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import type WebSocket from 'ws';
import { loadConfig } from '../../src/config';
import { mintToken } from '../../src/db';
import { createService, type Service } from '../../src/compose';
import { KERNEL_LAUNCH_JOB } from '../../src/kernels';
import net from 'node:net';
import { decodeLauncherPayload, generateResponseKeys, loopbackUidCheck, ResponseListener, TRUSTED, type PeerCheck, type RsaKeys } from '../../src/kernels/lifecycle/response-address';
import { connectWs, execute, type Msg } from '../support/jupyter-ws';

jest.setTimeout(120_000);

const ADMIN = 'admin-token-for-eg-tests-0123456789';
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-eg-'));
const homes = path.join(root, 'homes');
const LAUNCHER = path.join(__dirname, 'eg_launcher.py');
const LOCAL = 'enterprise_gateway.services.processproxies.processproxy.LocalProcessProxy';
const K8S = 'enterprise_gateway.services.processproxies.k8s.KubernetesProcessProxy';

/** A user kernelspec in `~/.local/share/jupyter/kernels/<name>` with EG's launcher in its resource dir. */
function userKernel(user: string, name: string, spec: Record<string, unknown>): string {
  const dir = path.join(homes, user, '.local', 'share', 'jupyter', 'kernels', name);
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(LAUNCHER, path.join(dir, 'eg_launcher.py'));
  fs.writeFileSync(path.join(dir, 'kernel.json'), JSON.stringify({ display_name: name, language: 'python', env: { KERNEL_ENV_EXP: 'eg-env' }, ...spec }));
  return dir;
}

const EG_ARGV = [
  '/usr/bin/python3',
  '{resource_dir}/eg_launcher.py',
  '--kernel-id',
  '{kernel_id}',
  '--port-range',
  '{port_range}',
  '--response-address',
  '{response_address}',
  '--public-key',
  '{public_key}',
  '--resource-dir',
  '{resource_dir}',
  '{connection_file}',
];

const egDir = userKernel('carol', 'python_eg', { argv: EG_ARGV, metadata: { process_proxy: { class_name: LOCAL, config: { port_range: '33000..34999' } } } });
userKernel('carol', 'python_eg_v0', { argv: EG_ARGV, env: { KERNEL_ENV_EXP: 'eg-env', SG_TEST_PAYLOAD_VERSION: '0' }, metadata: { process_proxy: { class_name: LOCAL } } });
userKernel('carol', 'python_k8s', { argv: EG_ARGV, metadata: { process_proxy: { class_name: K8S, config: { image_name: 'elyra/kernel-py:3.2.3' } } } });
userKernel('carol', 'python_yarn', { argv: EG_ARGV, metadata: { process_proxy: { class_name: 'enterprise_gateway.services.processproxies.yarn.YarnClusterProcessProxy' } } });

let service: Service;
let port: number;
let carol: string;

beforeAll(async () => {
  service = await createService(
    loadConfig({
      SPAWNGATE_DATA_DIR: path.join(root, 'data'),
      SPAWNGATE_HUB_TOKEN: 'hub-token-for-eg-tests-0123456789',
      SPAWNGATE_ADMIN_TOKEN: ADMIN,
      SPAWNGATE_HOME_ROOT: homes,
      SPAWNGATE_PORT: '0',
      // The homes here are made by root: the protocol, not workload identity (tests/tenancy), is under test.
      SPAWNGATE_LOCAL_ALLOW_ROOT: '1',
      // EG launchers listen on TCP ports; refused by default on a multi-user local backend (tests/tenancy/tcp-kernels).
      SPAWNGATE_LOCAL_TCP_KERNELS_OPEN_TO_ALL_USERS: '1',
    }),
  );
  port = await service.listen();
  await service.db.query(`
    INSERT INTO users (username) VALUES ('carol');
    INSERT INTO experiments (name, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib) VALUES ('eg-exp', 0.5, 1, 256, 1024);
    INSERT INTO environments (name, experiment_id) SELECT 'eg-env', id FROM experiments WHERE name = 'eg-exp';
    INSERT INTO experiment_members (experiment_id, user_id) SELECT e.id, u.id FROM experiments e, users u WHERE e.name = 'eg-exp' AND u.username = 'carol';
  `);
  carol = await mintToken(service.db, { username: 'carol', kind: 'cli' });
});

afterAll(async () => {
  for (const k of await service.kernels.list(undefined)) await service.kernels.shutdown(undefined, k.id);
  await service.close();
  fs.rmSync(root, { recursive: true, force: true });
});

const as = (token: string) => ({ Authorization: `token ${token}` });
const connect = (id: string): Promise<WebSocket> => connectWs(`ws://127.0.0.1:${port}/api/kernels/${id}/channels`, as(carol));
const lines = async (ws: WebSocket, code: string): Promise<string> => (await execute(ws, code)).stdout.trim();

test('GET /api carries EG gateway_version besides version', async () => {
  const res = await request(service.app!).get('/api').set(as(carol));
  expect(res.status).toBe(200);
  expect(res.body.gateway_version).toBe(res.body.version);
  expect(typeof res.body.version).toBe('string');
});

test('an EG kernelspec: placeholders substituted, connection info by response address, interrupt and shutdown by comm port', async () => {
  const res = await request(service.app!).post('/api/kernels').set(as(carol)).send({ name: 'python_eg' });
  expect(res.status).toBe(201);
  expect(res.body.execution_state).toBe('starting');
  const id = res.body.id as string;

  let ws = await connect(id);
  const argv = JSON.parse(await lines(ws, 'import sys, json; print(json.dumps(sys.argv))')) as string[];
  expect(argv.join(' ')).not.toContain('{');
  const arg = (flag: string): string => argv[argv.indexOf(flag) + 1]!;
  expect(arg('--kernel-id')).toBe(id);
  expect(arg('--port-range')).toBe('33000..34999');
  expect(arg('--response-address')).toMatch(/^127\.0\.0\.1:\d+$/);
  expect(Buffer.from(arg('--public-key'), 'base64').length).toBeGreaterThan(200);
  expect(fs.realpathSync(arg('--resource-dir'))).toBe(fs.realpathSync(egDir));
  expect(argv[0]).toBe(path.join(arg('--resource-dir'), 'eg_launcher.py'));

  // The kernel listens where the launcher chose (inside the kernelspec's port range), with its own key.
  const cf = JSON.parse(await lines(ws, 'print(open(sys.argv[-1]).read())')) as { shell_port: number; key: string };
  expect(cf.shell_port).toBeGreaterThanOrEqual(33000);
  expect(cf.shell_port).toBeLessThanOrEqual(34999);
  const row = (await service.db.query<{ ports: { shell_port: number }; backend_ref: Record<string, unknown> }>('SELECT ports, backend_ref FROM kernels WHERE id = $1', [id]))[0]!;
  expect((row.backend_ref.reached_ports as { shell_port: number }).shell_port).toBe(cf.shell_port);
  expect(row.backend_ref.launcher_comm).toEqual({ host: '127.0.0.1', port: expect.any(Number) });

  const sleeping = execute(ws, 'import time; time.sleep(60)', 30000);
  await new Promise((r) => setTimeout(r, 1000));
  expect((await request(service.app!).post(`/api/kernels/${id}/interrupt`).set(as(carol))).status).toBe(204);
  expect((await sleeping).reply.content.ename).toBe('KeyboardInterrupt');
  expect(await lines(ws, "print(sys.modules['sg_eg_launcher_log'].requests)")).toBe("[{'signum': 2}]");

  // A manual restart: a new launcher, a new handshake, no iopub `restarting`.
  const statuses: string[] = [];
  ws.on('message', (d) => {
    const m = JSON.parse(d.toString()) as Msg;
    if (m.header.msg_type === 'status') statuses.push(String(m.content.execution_state));
  });
  const before = await lines(ws, 'import os; print(os.getpid())');
  const restarted = await request(service.app!).post(`/api/kernels/${id}/restart`).set(as(carol));
  expect(restarted.status).toBe(200);
  expect(statuses).not.toContain('restarting');
  ws.close();
  ws = await connect(id);
  const pid = Number(await lines(ws, 'import os; print(os.getpid())'));
  expect(String(pid)).not.toBe(before);
  expect(await lines(ws, "import sys; print(sys.modules['sg_eg_launcher_log'].requests)")).toBe('[]');
  ws.close();

  expect((await request(service.app!).delete(`/api/kernels/${id}`).set(as(carol))).status).toBe(204);
  const gone = async (): Promise<boolean> => {
    try {
      process.kill(pid, 0);
      return false;
    } catch {
      return true;
    }
  };
  for (let i = 0; i < 50 && !(await gone()); i++) await new Promise((r) => setTimeout(r, 100));
  expect(await gone()).toBe(true);
});

/** Runs the launch job again for a kernel put back in `starting`, as BullMQ does after a worker crashed. */
async function rerunLaunch(id: string, tag: string): Promise<void> {
  const jobId = `kernel-launch-${id}-${tag}`;
  await service.queue.add(KERNEL_LAUNCH_JOB, { kernelId: id, launchTimeoutMs: 30_000 }, { jobId, attempts: 1 });
  await service.queue.waitFor(jobId, 60_000);
}
const kernelPid = async (id: string): Promise<number> => {
  const ws = await connect(id);
  try {
    return Number(await lines(ws, 'import os; print(os.getpid())'));
  } finally {
    ws.close();
  }
};

test('a retried launch job whose launcher had reported adopts the kernel; one whose launcher had not replaces it', async () => {
  const res = await request(service.app!).post('/api/kernels').set(as(carol)).send({ name: 'python_eg' });
  expect(res.status).toBe(201);
  const id = res.body.id as string;
  const first = await kernelPid(id);

  // The job crashed after the payload arrived (the report is recorded) and is run again.
  await service.db.query(`UPDATE kernels SET state = 'starting' WHERE id = $1`, [id]);
  const t0 = Date.now();
  await rerunLaunch(id, 'after-report');
  expect((await service.db.query<{ state: string }>('SELECT state FROM kernels WHERE id = $1', [id]))[0]!.state).toBe('running');
  expect(await kernelPid(id)).toBe(first); // the same kernel: no second launcher, no new handshake
  expect(Date.now() - t0).toBeLessThan(15_000);

  // The job crashed before the payload arrived: the launcher reports to a listener that is gone.
  await service.db.query(`UPDATE kernels SET state = 'starting', backend_ref = backend_ref - 'launcher_reported' WHERE id = $1`, [id]);
  await rerunLaunch(id, 'before-report');
  expect((await service.db.query<{ state: string }>('SELECT state FROM kernels WHERE id = $1', [id]))[0]!.state).toBe('running');
  const second = await kernelPid(id);
  expect(second).not.toBe(first);
  let oldGone = false;
  for (let i = 0; i < 50 && !oldGone; i++) {
    try {
      process.kill(first, 0);
      await new Promise((r) => setTimeout(r, 100));
    } catch {
      oldGone = true;
    }
  }
  expect(oldGone).toBe(true); // replaced, not doubled
  expect((await request(service.app!).delete(`/api/kernels/${id}`).set(as(carol))).status).toBe(204);
});

test("a version-0 (EG 1.x) launcher is accepted on the local backend, where its readable payload never leaves loopback", async () => {
  const res = await request(service.app!).post('/api/kernels').set(as(carol)).send({ name: 'python_eg_v0' });
  expect(res.status).toBe(201);
  const ws = await connect(res.body.id as string);
  expect(await lines(ws, 'import os; print(os.environ["SG_TEST_PAYLOAD_VERSION"], 6 * 7)')).toBe('0 42');
  ws.close();
  expect((await request(service.app!).delete(`/api/kernels/${res.body.id}`).set(as(carol))).status).toBe(204);
});

test('a process proxy of another backend is refused naming its class; an unknown class too', async () => {
  const k8s = await request(service.app!).post('/api/kernels').set(as(carol)).send({ name: 'python_k8s' });
  expect(k8s.status).toBe(400);
  expect(k8s.body.message).toContain(K8S);
  expect(k8s.body.message).toContain('kubernetes backend');
  const yarn = await request(service.app!).post('/api/kernels').set(as(carol)).send({ name: 'python_yarn' });
  expect(yarn.status).toBe(400);
  expect(yarn.body.message).toContain('YarnClusterProcessProxy');
});

function sealFor(keys: RsaKeys) {
  return (info: object, publicKey = keys.publicKey): string => {
    const aes = randomBytes(16);
    const c = createCipheriv('aes-128-ecb', aes, null);
    const connInfo = Buffer.concat([c.update(JSON.stringify(info)), c.final()]).toString('base64');
    const pub = createPublicKey({ key: Buffer.from(publicKey, 'base64'), format: 'der', type: 'spki' });
    const key = publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_PADDING }, aes).toString('base64');
    return Buffer.from(JSON.stringify({ version: 1, key, conn_info: connInfo })).toString('base64');
  };
}
const sample = { kernel_id: 'k1', ip: '0.0.0.0', key: 'abc', shell_port: 1001, iopub_port: 1002, stdin_port: 1003, control_port: 1004, hb_port: 1005, comm_port: 1006 };

test('payloads: decrypted and validated; another kernel id, another key or tampering is refused', async () => {
  const keys = await generateResponseKeys();
  const seal = sealFor(keys);
  const info = { kernel_id: 'k1', ip: '0.0.0.0', key: 'abc', transport: 'tcp', signature_scheme: 'hmac-sha256', shell_port: 1001, iopub_port: 1002, stdin_port: 1003, control_port: 1004, hb_port: 1005, comm_port: 1006, pid: 5 };
  expect(decodeLauncherPayload(keys, seal(info), 'k1')).toEqual({ ip: '0.0.0.0', key: 'abc', ports: { shell_port: 1001, iopub_port: 1002, stdin_port: 1003, control_port: 1004, hb_port: 1005 }, commPort: 1006, version: 1 });
  expect(() => decodeLauncherPayload(keys, seal(info), 'k2')).toThrow('names another kernel');
  const other = await generateResponseKeys();
  expect(() => decodeLauncherPayload(keys, seal(info, other.publicKey), 'k1')).toThrow('does not decrypt');
  expect(() => decodeLauncherPayload(keys, seal({ ...info, shell_port: 70000 }), 'k1')).toThrow('shell_port');
  expect(() => decodeLauncherPayload(keys, 'not base64 json', 'k1')).toThrow('neither a version 1 launcher payload nor a version 0 one');
});

/** A version-0 payload as EG 1.x launchers made it: AES-128-ECB under the kernel id's first 16 characters, '%'-padded. */
function legacyPayload(info: object, kernelId: string): string {
  const text = JSON.stringify(info);
  const padded = text + '%'.repeat(16 - (Buffer.byteLength(text) % 16));
  const c = createCipheriv('aes-128-ecb', Buffer.from(kernelId.slice(0, 16)), null);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(padded), c.final()]).toString('base64');
}

const KID = '6f1c2a9e-0b7d-4c55-9a10-3e2f8d7c6b5a';

test('version-0 payloads: decoded with the kernel id as their key; another kernel id does not decode them', async () => {
  const keys = await generateResponseKeys();
  const { kernel_id: _unused, ...legacy } = sample; // version 0 does not name the kernel
  expect(decodeLauncherPayload(keys, legacyPayload(legacy, KID), KID)).toEqual({ ip: '0.0.0.0', key: 'abc', ports: { shell_port: 1001, iopub_port: 1002, stdin_port: 1003, control_port: 1004, hb_port: 1005 }, commPort: 1006, version: 0 });
  expect(() => decodeLauncherPayload(keys, legacyPayload(legacy, KID), 'a-different-kernel-id-0000')).toThrow('nor a version 0 one');
  expect(() => decodeLauncherPayload(keys, legacyPayload({ ...legacy, hb_port: 0 }, KID), KID)).toThrow('hb_port');
});

/**
 * Sends `payload` to a listener from `from` (a loopback address of its own, as a pod's would be),
 * keeping the connection open a moment so the listener can still read who holds it (a socket closed
 * at once is listed in /proc/net/tcp with uid 0: launcher-file-proof.test.ts covers that case).
 */
async function sendTo(l: ResponseListener, payload: string, from?: string): Promise<void> {
  const [host, p] = l.address.split(':');
  await new Promise<void>((resolve, reject) => {
    const sock = net.connect({ host, port: Number(p), ...(from ? { localAddress: from } : {}) }, () => {
      sock.write(payload);
      setTimeout(() => sock.end(), 300);
    });
    sock.on('error', reject);
    sock.on('close', () => resolve());
  });
}
const settledWithin = (l: ResponseListener, ms: number): Promise<string> =>
  Promise.race([l.report.then(() => 'accepted', (e: Error) => `failed: ${e.message}`), new Promise<string>((r) => setTimeout(() => r('pending'), ms))]);

test('a flood of connections is closed unread beyond the rate the listener judges, and the launcher is heard once it passes', async () => {
  const keys = await generateResponseKeys();
  let judged = 0;
  const byAddress: PeerCheck = async (peer) => {
    judged++;
    return peer.address === '127.0.0.2' ? TRUSTED : { verdict: 'refused', reason: `a payload came from ${peer.address}` };
  };
  const l = await ResponseListener.open(keys, KID, { bind: '127.0.0.1', advertised: '127.0.0.1', authenticate: byAddress, connectionsPerSecond: 10 });
  const [host, port] = l.address.split(':');
  // A colleague's process: 300 connections at once, each sending a payload-sized blob and leaving.
  const blast = (): Promise<void> =>
    new Promise((resolve) => {
      const sock = net.connect({ host, port: Number(port), localAddress: '127.0.0.3' }, () => sock.end('x'.repeat(4096)));
      sock.on('error', () => undefined);
      sock.on('close', () => resolve());
    });
  const started = performance.now();
  await Promise.all(Array.from({ length: 300 }, blast));
  const seconds = (performance.now() - started) / 1000;
  // The burst of 10, plus what the bucket refilled while the flood lasted.
  expect(judged).toBeLessThanOrEqual(10 + Math.ceil(seconds * 10) + 1);
  expect(judged).toBeGreaterThanOrEqual(10);
  const closed = Number(/^.*?; (\d+) connection\(s\) closed unread: more than 10 per second/.exec(l.rejection ?? '')?.[1]);
  expect(closed).toBeGreaterThan(300 - judged - 32 - 1); // the rest, but for those the listener refused as over its open limit
  expect(l.rejection).toMatch(/^a payload came from 127\.0\.0\.3; /);

  await new Promise((r) => setTimeout(r, 300)); // the bucket refills: the launcher connects once, as EG's do
  await sendTo(l, sealFor(keys)({ ...sample, kernel_id: KID }), '127.0.0.2');
  expect((await l.report).key).toBe('abc');
  await l.close();
});

test('a response address takes payloads only from processes of the expected uid', async () => {
  const keys = await generateResponseKeys();
  const opts = (uid: number) => ({ bind: '127.0.0.1', advertised: '127.0.0.1', authenticate: loopbackUidCheck(uid) });
  const mine = await ResponseListener.open(keys, 'k1', opts(process.getuid!()));
  await sendTo(mine, sealFor(keys)(sample));
  expect((await mine.report).commPort).toBe(1006);
  await mine.close();

  const other = await ResponseListener.open(keys, 'k1', opts(process.getuid!() + 4242));
  await sendTo(other, sealFor(keys)(sample));
  expect(await settledWithin(other, 1000)).toBe('pending');
  expect(other.rejection).toBe('a payload came from a process of another user');
  await other.close();
});

test("in containers: only the workload's own address is believed; its bad payload fails the launch at once; version 0 is refused from there", async () => {
  const keys = await generateResponseKeys();
  // The kernel's pod is 127.0.0.2 here; a colleague's (or the user's other) pod is 127.0.0.3.
  const byAddress: PeerCheck = async (peer) => (peer.address === '127.0.0.2' ? TRUSTED : { verdict: 'refused', reason: `a payload came from ${peer.address}, not from the kernel's workload (127.0.0.2)` });
  const open = () => ResponseListener.open(keys, KID, { bind: '127.0.0.1', advertised: '127.0.0.1', authenticate: byAddress, refuseVersion0: 'version 0 refused here' });
  const info = { ...sample, kernel_id: KID };

  const l1 = await open();
  await sendTo(l1, sealFor(keys)({ ...info, key: 'impostor' }), '127.0.0.3');
  expect(await settledWithin(l1, 500)).toBe('pending');
  expect(l1.rejection).toContain('127.0.0.3');
  await sendTo(l1, sealFor(keys)(info), '127.0.0.2');
  expect((await l1.report).key).toBe('abc');
  await l1.close();

  const l2 = await open();
  await sendTo(l2, 'garbage that is no payload', '127.0.0.3');
  expect(await settledWithin(l2, 500)).toBe('pending');
  await sendTo(l2, sealFor(keys)({ ...info, kernel_id: 'someone-else' }), '127.0.0.2');
  expect(await settledWithin(l2, 2000)).toBe('failed: connection info names another kernel');
  await l2.close();

  const { kernel_id: _unused, ...legacy } = sample;
  const l3 = await open();
  await sendTo(l3, legacyPayload(legacy, KID), '127.0.0.2');
  expect(await settledWithin(l3, 2000)).toBe('failed: version 0 refused here');
  await l3.close();
});
