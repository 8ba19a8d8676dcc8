/**
 * Enterprise Gateway kernelspecs on the local backend against real ipykernel: every EG argv
 * placeholder is substituted, a launcher of our own (tests/eg/eg_launcher.py, written from EG's
 * response-address protocol) reports its connection info encrypted to spawngate's public key, and
 * interrupts and shutdown go through the launcher's communication port. Process proxy classes of
 * other backends are refused naming the class; `GET /api` carries EG's `gateway_version`.
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
import net from 'node:net';
import { decodeLauncherPayload, generateResponseKeys, ResponseListener, type RsaKeys } from '../../src/kernels/lifecycle/response-address';
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
  expect(decodeLauncherPayload(keys, seal(info), 'k1')).toEqual({ ip: '0.0.0.0', key: 'abc', ports: { shell_port: 1001, iopub_port: 1002, stdin_port: 1003, control_port: 1004, hb_port: 1005 }, commPort: 1006 });
  expect(() => decodeLauncherPayload(keys, seal(info), 'k2')).toThrow('names another kernel');
  const other = await generateResponseKeys();
  expect(() => decodeLauncherPayload(keys, seal(info, other.publicKey), 'k1')).toThrow('does not decrypt');
  expect(() => decodeLauncherPayload(keys, seal({ ...info, shell_port: 70000 }), 'k1')).toThrow('shell_port');
  expect(() => decodeLauncherPayload(keys, 'not base64 json', 'k1')).toThrow('base64 JSON');
});

test('a response address takes payloads only from processes of the expected uid', async () => {
  const keys = await generateResponseKeys();
  const send = async (l: ResponseListener): Promise<void> => {
    const [host, p] = l.address.split(':');
    await new Promise<void>((resolve, reject) => {
      const sock = net.connect({ host, port: Number(p) }, () => sock.end(sealFor(keys)(sample)));
      sock.on('error', reject);
      sock.on('close', () => resolve());
    });
  };
  const mine = await ResponseListener.open(keys, 'k1', '127.0.0.1', { peerUid: process.getuid!() });
  await send(mine);
  expect((await mine.report).commPort).toBe(1006);
  await mine.close();

  const other = await ResponseListener.open(keys, 'k1', '127.0.0.1', { peerUid: process.getuid!() + 4242 });
  await send(other);
  const outcome = await Promise.race([other.report.then(() => 'accepted'), new Promise((r) => setTimeout(() => r('refused'), 1000))]);
  expect(outcome).toBe('refused');
  expect(other.rejection).toBe('a payload came from a process of another user');
  await other.close();
});
