/**
 * The hostile-tenant suite (issue 11): spawngate in-process as root on the local backend, two real
 * system users owning their homes, each with a kernel launched through the gateway with their own
 * token. Code sent to alice's kernel over the websocket (execute_request) tries what a hostile tenant
 * would and reports what happened; every attempt must fail, and her kernel must run as her. Each probe
 * has a control run as root (spawngate's identity) showing the target exists and the probe can work,
 * so a failure is the isolation's doing and not a wrong path.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type WebSocket from 'ws';
import { connectWs, execute } from '../support/jupyter-ws';
import { canCreateUsers, createSystemUser, removeSystemUsers, type SystemUser } from '../support/system-users';
import { IPYKERNEL, PYTHON, startTenantService, type TenantService } from '../gateway/tenant-service';

jest.setTimeout(120_000);

const cannot = canCreateUsers();
if (cannot) throw new Error(`hostile-kernel tests ${cannot}`);

const tag = randomBytes(3).toString('hex');
/** A secret in spawngate's configuration and environment that no tenant may learn. */
const FAKE_SECRET = `fake-admin-secret-${randomBytes(12).toString('hex')}`;
const HUB_SECRET = `fake-hub-secret-${randomBytes(12).toString('hex')}`;

let t: TenantService;
let alice: SystemUser;
let bob: SystemUser;
let homes: string;
let dataDir: string;
let runtime: string;
const kernelIds: Record<string, string> = {};
let aliceWs: WebSocket;
let bobWs: WebSocket;

/** What an attempt inside the kernel reports: it worked (and what it got), or the exception's type. */
type Attempt = { ok: true; got: string } | { ok: false; error: string };

const PRELUDE = `
import json, os, socket
def attempt(fn):
    try:
        return {"ok": True, "got": repr(fn())[:300]}
    except Exception as e:
        return {"ok": False, "error": type(e).__name__}
def report(fn):
    print(json.dumps(attempt(fn)))
`;

/** Runs Python in alice's kernel and parses the JSON line it prints. */
async function inAlice<T = Attempt>(code: string, timeoutMs = 20_000): Promise<T> {
  const { stdout, reply } = await execute(aliceWs, code, timeoutMs);
  expect(reply.content.status).toBe('ok');
  return JSON.parse(stdout.trim().split('\n').pop()!) as T;
}

const py = (s: string): string => JSON.stringify(s);

/** A ZMQ SUB on `endpoint` for `seconds`, printing how many messages it received. */
const subscriber = (endpoint: string, seconds: number): string => `
import json, time, zmq
s = zmq.Context.instance().socket(zmq.SUB)
s.setsockopt(zmq.LINGER, 0)
s.setsockopt(zmq.SUBSCRIBE, b"")
s.connect(${py(endpoint)})
n, end = 0, time.time() + ${seconds}
while time.time() < end:
    if s.poll(100):
        s.recv_multipart()
        n += 1
s.close()
print(json.dumps({"received": n}))
`;

function runAsRoot(script: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, ['-c', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (out += c));
    child.once('error', reject);
    child.once('exit', () => resolve(out));
  });
}

const bobConnectionFile = (): string => path.join(runtime, kernelIds[bob.name]!, 'c.json');

beforeAll(async () => {
  homes = fs.mkdtempSync('/tmp/sg-hk-homes-');
  fs.chmodSync(homes, 0o755);
  alice = createSystemUser(`hka${tag}`, homes);
  bob = createSystemUser(`hkb${tag}`, homes);
  process.env.SPAWNGATE_HOSTILE_FAKE_SECRET = FAKE_SECRET;
  t = await startTenantService({
    users: [alice.name, bob.name],
    homes,
    // The default a lab runs with: no root-owned homes accepted.
    env: { SPAWNGATE_ADMIN_TOKEN: FAKE_SECRET, SPAWNGATE_HUB_TOKEN: HUB_SECRET, SPAWNGATE_LOCAL_ALLOW_ROOT: '0' },
  });
  dataDir = t.service.config.dataDir;
  runtime = `${dataDir}.run`;
  for (const u of [alice, bob]) {
    t.kernelspec(u.name, 'python3', IPYKERNEL);
    // The kernelspec was written by root: give the user their own tree back, as on a real home.
    for (let p = path.join(u.home, '.local', 'share', 'jupyter', 'kernels', 'python3', 'kernel.json'); p !== homes; p = path.dirname(p)) {
      fs.chownSync(p, u.uid, u.gid);
    }
    const res = await t.launch(u.name, 'python3');
    expect([res.status, res.body.message]).toEqual([201, undefined]);
    kernelIds[u.name] = res.body.id as string;
  }
  const url = (u: SystemUser) => `ws://127.0.0.1:${t.port}/api/kernels/${kernelIds[u.name]}/channels`;
  aliceWs = await connectWs(url(alice), { Authorization: `token ${t.tokens[alice.name]}` });
  bobWs = await connectWs(url(bob), { Authorization: `token ${t.tokens[bob.name]}` });
  await execute(aliceWs, PRELUDE);
});

afterAll(async () => {
  aliceWs?.close();
  bobWs?.close();
  await t?.close();
  delete process.env.SPAWNGATE_HOSTILE_FAKE_SECRET;
  removeSystemUsers([alice, bob].filter(Boolean));
  if (homes) fs.rmSync(homes, { recursive: true, force: true });
});

test("alice's kernel runs as alice (uid, gid), with HOME her home and its working directory inside it", async () => {
  const who = await inAlice<{ uid: number; gid: number; home: string; cwd: string }>(
    'print(json.dumps({"uid": os.getuid(), "gid": os.getgid(), "home": os.environ.get("HOME"), "cwd": os.getcwd()}))',
  );
  expect({ uid: who.uid, gid: who.gid, home: who.home }).toEqual({ uid: alice.uid, gid: alice.gid, home: alice.home });
  expect(`${who.cwd}/`.startsWith(`${alice.home}/`)).toBe(true);
});

test("alice cannot read spawngate's /proc/<pid>/environ (or its memory map), nor its parent's", async () => {
  for (const pid of [process.pid, process.ppid]) {
    const file = `/proc/${pid}/environ`;
    expect(fs.readFileSync(file).length).toBeGreaterThan(0); // control: spawngate (root) reads it
    expect(await inAlice(`report(lambda: open(${py(file)}, "rb").read())`)).toEqual({ ok: false, error: 'PermissionError' });
    expect(await inAlice(`report(lambda: open(${py(`/proc/${pid}/maps`)}, "rb").read())`)).toEqual({ ok: false, error: 'PermissionError' });
  }
});

test("alice's kernel environment carries none of spawngate's secrets", async () => {
  const env = await inAlice<Record<string, string>>('print(json.dumps(dict(os.environ)))');
  const all = JSON.stringify(env);
  expect(all).not.toContain(FAKE_SECRET);
  expect(all).not.toContain(HUB_SECRET);
  expect(Object.keys(env).filter((k) => k.startsWith('SPAWNGATE_'))).toEqual([]);
});

test("alice cannot list spawngate's data directory", async () => {
  expect(fs.readdirSync(dataDir)).toContain('secret.key'); // control
  expect(await inAlice(`report(lambda: os.listdir(${py(dataDir)}))`)).toEqual({ ok: false, error: 'PermissionError' });
});

test("alice cannot read the data directory's secret.key", async () => {
  const file = path.join(dataDir, 'secret.key');
  expect(fs.readFileSync(file, 'utf8').length).toBeGreaterThan(0); // control
  expect(await inAlice(`report(lambda: open(${py(file)}).read())`)).toEqual({ ok: false, error: 'PermissionError' });
});

test('alice cannot list the kernels runtime directory (where every connection file lives)', async () => {
  expect(fs.readdirSync(runtime)).toEqual(expect.arrayContaining([kernelIds[alice.name], kernelIds[bob.name]])); // control
  expect(await inAlice(`report(lambda: os.listdir(${py(runtime)}))`)).toEqual({ ok: false, error: 'PermissionError' });
});

test("alice cannot list bob's home", async () => {
  expect(fs.readdirSync(bob.home)).toContain('.local'); // control
  expect(await inAlice(`report(lambda: os.listdir(${py(bob.home)}))`)).toEqual({ ok: false, error: 'PermissionError' });
});

test("alice cannot read a file in bob's home (his kernelspec)", async () => {
  const file = path.join(bob.home, '.local', 'share', 'jupyter', 'kernels', 'python3', 'kernel.json');
  expect(fs.existsSync(file)).toBe(true); // control
  expect(await inAlice(`report(lambda: open(${py(file)}).read())`)).toEqual({ ok: false, error: 'PermissionError' });
});

test("alice cannot enter bob's kernel runtime directory", async () => {
  const dir = path.dirname(bobConnectionFile());
  expect(fs.statSync(dir).isDirectory()).toBe(true); // control
  expect(await inAlice(`report(lambda: os.chdir(${py(dir)}))`)).toEqual({ ok: false, error: 'PermissionError' });
  expect(await inAlice(`report(lambda: os.listdir(${py(dir)}))`)).toEqual({ ok: false, error: 'PermissionError' });
});

test("alice cannot read bob's connection file (his kernel's key)", async () => {
  const key = (JSON.parse(fs.readFileSync(bobConnectionFile(), 'utf8')) as { key: string }).key;
  expect(key.length).toBeGreaterThan(0); // control
  const got = await inAlice(`report(lambda: open(${py(bobConnectionFile())}).read())`);
  expect(got).toEqual({ ok: false, error: 'PermissionError' });
  expect(JSON.stringify(got)).not.toContain(key);
});

test("alice cannot connect to any of bob's kernel ipc sockets", async () => {
  const info = JSON.parse(fs.readFileSync(bobConnectionFile(), 'utf8')) as Record<string, unknown> & { ip: string; transport: string };
  expect(info.transport).toBe('ipc');
  for (const channel of ['shell_port', 'iopub_port', 'stdin_port', 'control_port', 'hb_port']) {
    const socketPath = `${info.ip}-${String(info[channel])}`;
    expect(fs.statSync(socketPath).isSocket()).toBe(true); // control
    const got = await inAlice(`
def connect():
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(${py(socketPath)})
    finally:
        s.close()
report(connect)`);
    expect({ channel, got }).toEqual({ channel, got: { ok: false, error: 'PermissionError' } });
  }
});

test("alice's ZMQ subscription to bob's iopub receives none of his output (root's does)", async () => {
  const info = JSON.parse(fs.readFileSync(bobConnectionFile(), 'utf8')) as { ip: string; iopub_port: number };
  const endpoint = `ipc://${info.ip}-${info.iopub_port}`;
  const seconds = 4;
  const theirs = inAlice<{ received: number }>(subscriber(endpoint, seconds), 30_000);
  const control = runAsRoot(subscriber(endpoint, seconds));
  // Both subscribers are connecting; now bob works, printing for a couple of seconds.
  await new Promise((r) => setTimeout(r, 1000));
  const bobRun = await execute(bobWs, 'import time\nfor i in range(5):\n    print("bob secret output", i, flush=True)\n    time.sleep(0.3)', 20_000);
  expect(bobRun.stdout).toContain('bob secret output 4');
  const [alicesCount, rootOut] = await Promise.all([theirs, control]);
  expect((JSON.parse(rootOut.trim()) as { received: number }).received).toBeGreaterThan(0);
  expect(alicesCount).toEqual({ received: 0 });
});
