/**
 * Kernels that listen on TCP ports of spawngate's host have no wall between local users: spawngate's
 * ipc kernels live in a directory only their user can enter, a 127.0.0.1 port is open to every uid.
 * With users under their own identities (spawngate is root), such launches — Enterprise Gateway
 * launchers, `kernels.host_transport: tcp` — are refused (403, naming the setting) unless the
 * administrator sets SPAWNGATE_LOCAL_TCP_KERNELS_OPEN_TO_ALL_USERS. Real system users, real ipykernel,
 * real Postgres; the rule itself is also checked for each combination of its inputs.
 */
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { canCreateUsers, createSystemUser, removeSystemUsers, type SystemUser } from '../support/system-users';
import { IPYKERNEL, PYTHON, startTenantService, type TenantService } from '../gateway/tenant-service';
import { assertKernelPortsWalled, TCP_KERNELS_SETTING } from '../../src/kernels/lifecycle/tcp-policy';
import type { KernelContext } from '../../src/kernels/lifecycle/kernel-context';

jest.setTimeout(180_000);

const cannot = canCreateUsers();
if (cannot) throw new Error(`tcp-kernels tests ${cannot}`);

const EG_ARGV = [PYTHON, '{resource_dir}/eg_launcher.py', '--kernel-id', '{kernel_id}', '--port-range', '{port_range}', '--response-address', '{response_address}', '--public-key', '{public_key}', '--resource-dir', '{resource_dir}', '{connection_file}'];
const tag = randomBytes(2).toString('hex');
let homes: string;
let amy: SystemUser;
let ben: SystemUser;

/** Gives everything under amy's home to her, as a real home would be. */
function chownTree(u: SystemUser, dir = u.home): void {
  fs.chownSync(dir, u.uid, u.gid);
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) chownTree(u, p);
    else fs.chownSync(p, u.uid, u.gid);
  }
}

async function service(env: Record<string, string>, kernels = ''): Promise<TenantService> {
  const t = await startTenantService({ users: [amy.name, ben.name], homes, kernels, env: { SPAWNGATE_LOCAL_ALLOW_ROOT: '0', ...env } });
  t.kernelspec(amy.name, 'python3', IPYKERNEL);
  t.kernelspec(amy.name, 'python_eg', EG_ARGV);
  fs.copyFileSync(path.join(__dirname, '..', 'eg', 'eg_launcher.py'), path.join(amy.home, '.local/share/jupyter/kernels/python_eg/eg_launcher.py'));
  chownTree(amy);
  return t;
}

beforeAll(() => {
  homes = fs.mkdtempSync('/tmp/sg-h11g-tcp-');
  fs.chmodSync(homes, 0o755);
  amy = createSystemUser(`h11g-amy${tag}`, homes);
  ben = createSystemUser(`h11g-ben${tag}`, homes);
});

afterAll(() => {
  removeSystemUsers([amy, ben].filter(Boolean));
  if (homes) fs.rmSync(homes, { recursive: true, force: true });
});

describe('by default, users under their own identities', () => {
  let t: TenantService;
  beforeAll(async () => {
    t = await service({});
  });
  afterAll(async () => {
    await t?.close();
  });

  test("an Enterprise Gateway launcher kernelspec is refused (403) naming the risk and the setting; nothing is launched; amy's ipc kernel still starts", async () => {
    const refused = await t.launch(amy.name, 'python_eg');
    expect(refused.status).toBe(403);
    expect(refused.body.message).toContain('Enterprise Gateway launcher');
    expect(refused.body.message).toContain('every local user could connect');
    expect(refused.body.message).toContain(TCP_KERNELS_SETTING);
    expect(await t.service.db.query('SELECT count(*)::int AS n FROM kernels')).toEqual([{ n: 0 }]);

    const ok = await t.launch(amy.name, 'python3');
    expect([ok.status, ok.body.message]).toEqual([201, undefined]);
  });
});

test("kernels.host_transport 'tcp' is refused the same way where users are separated, and allowed where they are not or when the administrator accepts it", () => {
  const ctx = (portsSharedAcrossUsers: boolean, optIn: boolean, ipc: boolean) =>
    ({ backend: { capabilities: { hostProcesses: true, portsSharedAcrossUsers } }, hostProcesses: true, ipc, config: { env: { [TCP_KERNELS_SETTING]: optIn } } }) as unknown as KernelContext;
  const plain = [PYTHON, '-m', 'ipykernel_launcher', '-f', '{connection_file}'];
  expect(() => assertKernelPortsWalled(ctx(true, false, false), 'python3', plain)).toThrow(/host_transport is 'tcp'.*SPAWNGATE_LOCAL_TCP_KERNELS_OPEN_TO_ALL_USERS=1/s);
  expect(() => assertKernelPortsWalled(ctx(true, false, true), 'python3', plain)).not.toThrow();
  expect(() => assertKernelPortsWalled(ctx(true, true, false), 'python3', plain)).not.toThrow();
  expect(() => assertKernelPortsWalled(ctx(false, false, false), 'python3', plain)).not.toThrow();
  expect(() => assertKernelPortsWalled(ctx(true, false, true), 'eg', EG_ARGV)).toThrow(/Enterprise Gateway launcher/);
});
