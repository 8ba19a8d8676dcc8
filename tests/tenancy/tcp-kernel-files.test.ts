/**
 * With SPAWNGATE_LOCAL_TCP_KERNELS_OPEN_TO_ALL_USERS=1, kernels that listen on TCP ports start as their
 * real user: their connection file is in the kernel's own runtime directory (0700, the file 0600, both
 * the user's), not in spawngate's private data directory, which the user could not read. Another user
 * cannot read it; the directory goes when the kernel does (shutdown, reconcile). An Enterprise Gateway
 * launcher there is believed reliably, though it closes its response connection at once, with or without
 * `{connection_file}` in its argv (without, its temporary file is in that directory: TMPDIR). Without the
 * opt-in the 403 stays. Real system users, real ipykernel, real Postgres.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { asUser, canCreateUsers, createSystemUser, removeSystemUsers, type SystemUser } from '../support/system-users';
import { connectWs, execute } from '../support/jupyter-ws';
import { IPYKERNEL, PYTHON, startTenantService, type TenantService } from '../gateway/tenant-service';
import { TCP_KERNELS_SETTING } from '../../src/kernels/lifecycle/tcp-policy';
import { runtimeRootOf } from '../../src/kernels/lifecycle';

jest.setTimeout(240_000);

const cannot = canCreateUsers();
if (cannot) throw new Error(`tcp-kernel-files tests ${cannot}`);

const EG_ARGV = [PYTHON, '{resource_dir}/eg_launcher.py', '--kernel-id', '{kernel_id}', '--port-range', '{port_range}', '--response-address', '{response_address}', '--public-key', '{public_key}', '--resource-dir', '{resource_dir}', '{connection_file}'];
/** EG's stock `python_distributed` argv (no `{connection_file}`: the launcher makes a temporary file), with the test launcher. */
const EG_DISTRIBUTED_ARGV = [
  PYTHON,
  '{resource_dir}/eg_launcher.py',
  '--RemoteProcessProxy.kernel-id',
  '{kernel_id}',
  '--RemoteProcessProxy.response-address',
  '{response_address}',
  '--RemoteProcessProxy.public-key',
  '{public_key}',
  '--RemoteProcessProxy.port-range',
  '{port_range}',
  '--RemoteProcessProxy.spark-context-initialization-mode',
  'none',
];
const tag = randomBytes(2).toString('hex');
let homes: string;
let amy: SystemUser;
let ben: SystemUser;

function chownTree(u: SystemUser, dir = u.home): void {
  fs.chownSync(dir, u.uid, u.gid);
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) chownTree(u, p);
    else fs.chownSync(p, u.uid, u.gid);
  }
}

async function service(env: Record<string, string>): Promise<TenantService> {
  const t = await startTenantService({ users: [amy.name, ben.name], homes, kernels: '  host_transport: tcp\n', env: { SPAWNGATE_LOCAL_ALLOW_ROOT: '0', ...env } });
  t.kernelspec(amy.name, 'python3', IPYKERNEL);
  t.kernelspec(amy.name, 'python_eg', EG_ARGV);
  fs.copyFileSync(path.join(__dirname, '..', 'eg', 'eg_launcher.py'), path.join(amy.home, '.local/share/jupyter/kernels/python_eg/eg_launcher.py'));
  const distributed = path.join(amy.home, '.local/share/jupyter/kernels/python_distributed');
  fs.mkdirSync(distributed, { recursive: true });
  const metadata = { process_proxy: { class_name: 'enterprise_gateway.services.processproxies.distributed.DistributedProcessProxy' } };
  fs.writeFileSync(path.join(distributed, 'kernel.json'), JSON.stringify({ argv: EG_DISTRIBUTED_ARGV, display_name: 'Python 3 (distributed)', language: 'python', metadata }));
  fs.copyFileSync(path.join(__dirname, '..', 'eg', 'eg_launcher.py'), path.join(distributed, 'eg_launcher.py'));
  chownTree(amy);
  return t;
}

/** The kernel's uid and the connection file it was started with, as the kernel itself reports them. */
async function inspect(t: TenantService, kernelId: string): Promise<{ uid: number; file: string; transport: string; ip: string; tmp: string }> {
  const ws = await connectWs(`ws://127.0.0.1:${t.port}/api/kernels/${kernelId}/channels`, { Authorization: `token ${t.tokens[amy.name]}` });
  try {
    const code =
      'import os, json, tempfile\nfrom ipykernel.connect import get_connection_file\nf = get_connection_file()\nc = json.load(open(f))\n' +
      'print(json.dumps({"uid": os.getuid(), "file": f, "transport": c["transport"], "ip": c["ip"], "tmp": tempfile.gettempdir()}))';
    return JSON.parse((await execute(ws, code, 60_000)).stdout.trim()) as { uid: number; file: string; transport: string; ip: string; tmp: string };
  } finally {
    ws.close();
  }
}

function expectWalledFile(t: TenantService, kernelId: string, file: string): void {
  const dir = path.join(runtimeRootOf(t.service.config), kernelId);
  expect(path.dirname(file)).toBe(dir);
  const d = fs.statSync(dir);
  const f = fs.statSync(file);
  expect([d.uid, d.mode & 0o777, f.uid, f.mode & 0o777]).toEqual([amy.uid, 0o700, amy.uid, 0o600]);
  expect(asUser(amy, `cat ${file} >/dev/null`).status).toBe(0);
  const other = asUser(ben, `cat ${file}`);
  expect(other.status).not.toBe(0);
  expect(other.stderr).toContain('Permission denied');
}

beforeAll(() => {
  homes = fs.mkdtempSync('/tmp/sg-h11t-tcp-');
  fs.chmodSync(homes, 0o755);
  amy = createSystemUser(`h11t-amy${tag}`, homes);
  ben = createSystemUser(`h11t-ben${tag}`, homes);
});

afterAll(() => {
  removeSystemUsers([amy, ben].filter(Boolean));
  if (homes) fs.rmSync(homes, { recursive: true, force: true });
});

describe(`with ${TCP_KERNELS_SETTING}=1 and kernels.host_transport tcp`, () => {
  let t: TenantService;
  beforeAll(async () => {
    t = await service({ [TCP_KERNELS_SETTING]: '1' });
  });
  afterAll(async () => {
    await t?.close();
  });

  test("a kernel starts as its user, runs code over TCP, reads its connection file from its own 0700 directory that ben cannot read; shutdown removes the directory", async () => {
    const res = await t.launch(amy.name, 'python3');
    expect([res.status, res.body.message]).toEqual([201, undefined]);
    const id = res.body.id as string;
    const seen = await inspect(t, id);
    expect(seen).toMatchObject({ uid: amy.uid, transport: 'tcp', ip: '127.0.0.1' });
    expectWalledFile(t, id, seen.file);
    expect(fs.existsSync(path.join(t.service.config.dataDir, 'kernels', `kernel-${id}.json`))).toBe(false);

    await t.service.kernels.shutdown(undefined, id);
    expect(fs.existsSync(path.dirname(seen.file))).toBe(false);
  });

  // EG launchers connect, send and close at once: their socket is often orphaned (uid 0 in /proc/net/tcp)
  // before spawngate reads who held it, and the payload is then believed because its key and ports equal
  // the connection file the launcher wrote into the kernel's own directory (launcher-file-proof.ts).
  // Three launches in a row: when only the uid was believed, about one in three was refused.
  test('an Enterprise Gateway launcher kernelspec starts as its user, three times in a row; its connection file is walled the same way', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await t.launch(amy.name, 'python_eg');
      expect([i, res.status, res.body.message]).toEqual([i, 201, undefined]);
      const id = res.body.id as string;
      const seen = await inspect(t, id);
      expect(seen.uid).toBe(amy.uid);
      expectWalledFile(t, id, seen.file);
      await t.service.kernels.shutdown(undefined, id);
      expect(fs.existsSync(path.dirname(seen.file))).toBe(false);
    }
  });

  // EG's stock python_distributed has no {connection_file}: its launcher makes a temporary file, which lands
  // in the kernel's own directory because TMPDIR is that directory, and is the second proof there.
  // Before, it was in /tmp and such a launch was refused whenever the sender's uid could no longer be read.
  test('an EG kernelspec without {connection_file} (python_distributed) starts as its user, three times in a row; its temporary connection file and its user code\'s temp files are in its walled directory and go with it', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await t.launch(amy.name, 'python_distributed');
      expect([i, res.status, res.body.message]).toEqual([i, 201, undefined]);
      const id = res.body.id as string;
      const seen = await inspect(t, id);
      const dir = path.join(runtimeRootOf(t.service.config), id);
      expect(seen.uid).toBe(amy.uid);
      expect(path.basename(seen.file)).toMatch(new RegExp(`^kernel-${id}_[a-z0-9_]{8}\\.json$`));
      expectWalledFile(t, id, seen.file);
      expect(seen.tmp).toBe(dir);
      expect(fs.existsSync(path.join(dir, 'c.json'))).toBe(true); // spawngate's, unused by this launcher
      await t.service.kernels.shutdown(undefined, id);
      expect(fs.existsSync(dir)).toBe(false);
    }
  });

  test("reconcile removes the directory of a kernel the database does not know, and keeps a live kernel's", async () => {
    const res = await t.launch(amy.name, 'python3');
    expect(res.status).toBe(201);
    const live = path.join(runtimeRootOf(t.service.config), res.body.id as string);
    const stray = path.join(runtimeRootOf(t.service.config), randomUUID());
    fs.mkdirSync(stray, { mode: 0o700 });
    fs.writeFileSync(path.join(stray, 'c.json'), '{}', { mode: 0o600 });
    await t.service.kernels.reconcile();
    expect([fs.existsSync(stray), fs.existsSync(live)]).toEqual([false, true]);
  });
});

test('without the opt-in, a host_transport tcp kernel is still refused with 403 naming the setting; no directory is made', async () => {
  const t = await service({});
  try {
    const refused = await t.launch(amy.name, 'python3');
    expect(refused.status).toBe(403);
    expect(refused.body.message).toContain("host_transport is 'tcp'");
    expect(refused.body.message).toContain(TCP_KERNELS_SETTING);
    expect(await t.service.db.query('SELECT count(*)::int AS n FROM kernels')).toEqual([{ n: 0 }]);
    const root = runtimeRootOf(t.service.config);
    expect(fs.existsSync(root) ? fs.readdirSync(root) : []).toEqual([]);
  } finally {
    await t.close();
  }
});
