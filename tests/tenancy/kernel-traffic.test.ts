/**
 * Kernel traffic on a host-process backend (issue 11): kernels talk over ZMQ's ipc transport in a
 * per-kernel directory owned by the home's owner (0700) under a runtime root only spawngate owns
 * (0711), with the connection file 0600 inside; another system user can neither list the root, enter
 * alice's directory, read her connection file nor connect to her sockets. Real users made with useradd.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { removeKernelRuntime, writeKernelRuntime } from '../../src/kernels/lifecycle/runtime-dir';
import { asUser, canCreateUsers, createSystemUser, removeSystemUsers, type SystemUser } from '../support/system-users';
import { connectWs, execute } from '../support/jupyter-ws';
import { IPYKERNEL, PYTHON, startTenantService, type TenantService } from '../gateway/tenant-service';

jest.setTimeout(120_000);

const cannot = canCreateUsers();
if (cannot) throw new Error(`kernel-traffic tests ${cannot}`);

const tag = randomBytes(3).toString('hex');
let t: TenantService;
let alice: SystemUser;
let bob: SystemUser;
let runtime: string;
let homes: string;
let kernelId: string;
let kernelDir: string;
let kernelUid: number;

/** A Unix-socket connect to `socket` (exit 0 when it connected). */
const connectProbe = (socket: string): string => `${PYTHON} -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])' '${socket}'`;

beforeAll(async () => {
  homes = fs.mkdtempSync('/tmp/sg-kt-homes-');
  fs.chmodSync(homes, 0o755);
  alice = createSystemUser(`kta${tag}`, homes);
  bob = createSystemUser(`ktb${tag}`, homes);
  runtime = path.join(fs.mkdtempSync('/tmp/sg-kt-'), 'run');
  fs.chmodSync(path.dirname(runtime), 0o755);
  t = await startTenantService({ users: [alice.name, bob.name], homes, env: { SPAWNGATE_RUNTIME_DIR: runtime, SPAWNGATE_LOCAL_SHARED_IDENTITY: '0' } });
  t.kernelspec(alice.name, 'python3', IPYKERNEL);
  const res = await t.launch(alice.name, 'python3');
  expect(res.status).toBe(201);
  kernelId = res.body.id as string;
  kernelDir = path.join(runtime, kernelId);
});

afterAll(async () => {
  await t?.close();
  removeSystemUsers([alice, bob].filter(Boolean));
  for (const dir of [homes, runtime && path.dirname(runtime)]) if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test("alice's kernel runs over ipc: its traffic works and it listens on sockets in its own directory", async () => {
  const ws = await connectWs(`ws://127.0.0.1:${t.port}/api/kernels/${kernelId}/channels`, { Authorization: `token ${t.tokens[alice.name]}` });
  expect((await execute(ws, 'print(6 * 7)')).stdout.trim()).toBe('42');
  kernelUid = Number((await execute(ws, 'import os; print(os.getuid())')).stdout.trim());
  ws.close();
  const info = JSON.parse(fs.readFileSync(path.join(kernelDir, 'c.json'), 'utf8')) as { transport: string; ip: string };
  expect(info.transport).toBe('ipc');
  expect(info.ip).toBe(path.join(kernelDir, 'k'));
  for (const port of [1, 2, 3, 4, 5]) expect(fs.statSync(`${info.ip}-${port}`).isSocket()).toBe(true);
});

test("the runtime root is spawngate's, 0711; alice's kernel directory is hers, 0700; the connection file 0600", () => {
  const root = fs.statSync(runtime);
  expect({ uid: root.uid, mode: root.mode & 0o777 }).toEqual({ uid: process.getuid!(), mode: 0o711 });
  const dir = fs.statSync(kernelDir);
  expect({ uid: dir.uid, gid: dir.gid, mode: dir.mode & 0o777 }).toEqual({ uid: alice.uid, gid: alice.gid, mode: 0o700 });
  // ipykernel rewrites its connection file once bound, as the identity it runs as (alice once the local
  // backend runs kernels as the home's owner); spawngate's own write is checked in the next test.
  const file = fs.statSync(path.join(kernelDir, 'c.json'));
  expect({ uid: file.uid, mode: file.mode & 0o777 }).toEqual({ uid: kernelUid, mode: 0o600 });
});

test("the connection file spawngate writes for alice's kernel is hers, 0600, in her 0700 directory", async () => {
  const id = '00000000-0000-4000-8000-00000000abcd';
  const file = await writeKernelRuntime(runtime, id, { uid: alice.uid, gid: alice.gid }, '{}');
  try {
    const st = fs.statSync(file);
    expect({ uid: st.uid, gid: st.gid, mode: st.mode & 0o777 }).toEqual({ uid: alice.uid, gid: alice.gid, mode: 0o600 });
    expect(asUser(alice, `cat '${file}'`).stdout).toBe('{}');
    expect(asUser(bob, `cat '${file}'`).status).not.toBe(0);
  } finally {
    await removeKernelRuntime(runtime, id);
  }
});

test("bob cannot list the runtime root or enter alice's kernel directory", () => {
  expect(asUser(bob, `ls '${runtime}'`).status).not.toBe(0);
  const enter = asUser(bob, `ls '${kernelDir}'`);
  expect(enter.status).not.toBe(0);
  expect(enter.stderr).toMatch(/Permission denied/);
});

test("bob cannot read alice's connection file (the key)", () => {
  const read = asUser(bob, `cat '${path.join(kernelDir, 'c.json')}'`);
  expect(read.status).not.toBe(0);
  expect(read.stderr).toMatch(/Permission denied/);
  expect(read.stdout).toBe('');
});

test("bob cannot connect to alice's kernel sockets (iopub included); root, as the control, can", () => {
  for (const port of [1, 2, 3, 4, 5]) {
    const socket = path.join(kernelDir, `k-${port}`);
    const probe = asUser(bob, connectProbe(socket));
    expect({ port, status: probe.status, denied: /Permission denied/.test(probe.stderr) }).toEqual({ port, status: 1, denied: true });
  }
  // The same probe succeeds for spawngate's own identity, so the refusal above is the directory's doing.
  const control = asUser('root', connectProbe(path.join(kernelDir, 'k-2')));
  expect(control.status).toBe(0);
});

test("reconciliation removes a leftover directory of a kernel that no longer exists, never a live kernel's", async () => {
  const leftover = await writeKernelRuntime(runtime, '00000000-0000-4000-8000-0000000000ff', { uid: alice.uid, gid: alice.gid }, '{"key": "old"}');
  await t.service.kernels.reconcile();
  expect(fs.existsSync(path.dirname(leftover))).toBe(false);
  expect(fs.existsSync(path.join(kernelDir, 'c.json'))).toBe(true);
});

test('shutting the kernel down removes its runtime directory', async () => {
  await t.service.kernels.shutdown(alice.name, kernelId);
  expect(fs.existsSync(kernelDir)).toBe(false);
});
