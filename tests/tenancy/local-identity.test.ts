/**
 * Identity of workloads on the local backend (issue 11), against real system users made with useradd:
 * spawngate as root runs each workload as the owner of the user's home, with that user's supplementary
 * groups, HOME and working directory; nothing of spawngate's environment or state directory reaches
 * it; root-owned or missing homes are refused. A spawngate that is not root (run for real as a system
 * user) serves one user only, unless the shared identity is opted into.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { createLocalBackend, type LocalBackend, type LocalBackendOptions } from '../../src/backends/local';
import { PermanentBackendError, type WorkloadSpec } from '../../src/backends/types';
import { workloadIdentity } from '../../src/backends';
import { waitFor } from '../backends/contract';
import { loadConfig } from '../../src/config';
import type { Logger } from '../../src/logging';
import { createBackend } from '../../src/compose/backend-factory';
import { asUser, canCreateUsers, createSystemUser, removeSystemUsers, type SystemUser } from '../support/system-users';

const PY = '/usr/bin/python3';
const REPO = path.resolve(__dirname, '../..');
const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined } as unknown as LocalBackendOptions['logger'];

/** Prints what the workload is and what it can reach, as one JSON line, then sleeps. */
const PROBE = `
import json, os, sys, time
def attempt(fn):
    try:
        fn(); return "ok"
    except OSError as e:
        return type(e).__name__
out = {"uid": os.getuid(), "gid": os.getgid(), "groups": sorted(os.getgroups()), "home": os.environ.get("HOME"), "cwd": os.getcwd()}
for i, target in enumerate(sys.argv[1:]):
    out["list%d" % i] = attempt(lambda: os.listdir(target)) if target.endswith("/") else attempt(lambda: open(target).read())
print(json.dumps(out), flush=True)
time.sleep(600)
`;

const reason = canCreateUsers();

if (reason) {
  console.warn(`\n*** local identity tests SKIPPED: ${reason} ***\n`);
  test.skip(`local identity — skipped: ${reason}`, () => undefined);
} else {
  const tag = randomBytes(3).toString('hex');
  let homeRoot: string;
  let stateDir: string;
  let alice: SystemUser;
  let bob: SystemUser;
  let backend: LocalBackend;
  const group = `sgh1g${tag}`;
  let groupId: number;
  let n = 0;
  const names: string[] = [];
  const newName = () => {
    const name = `sg-id-${tag}-${++n}`;
    names.push(name);
    return name;
  };
  const spec = (user: string, extra: Partial<WorkloadSpec> = {}): WorkloadSpec => ({
    name: newName(),
    kind: 'kernel',
    labels: { 'spawngate/user': user },
    command: [PY, '-u', '-c', PROBE],
    env: { KERNEL_USERNAME: user, PATH: '/usr/bin:/bin' },
    ...extra,
  });
  const probeOf = async (b: LocalBackend, name: string): Promise<Record<string, unknown>> => {
    const lines = await waitFor(() => b.logs(name, 5), (l) => l.some((x) => x.startsWith('{')), 15_000);
    const line = lines.find((x) => x.startsWith('{'));
    if (!line) throw new Error(`no probe output from ${name}: ${JSON.stringify(lines)}`);
    return JSON.parse(line) as Record<string, unknown>;
  };

  beforeAll(() => {
    homeRoot = mkdtempSync(path.join(os.tmpdir(), 'sg-id-homes-'));
    chmodSync(homeRoot, 0o755);
    stateDir = path.join(mkdtempSync(path.join(os.tmpdir(), 'sg-id-state-')), 'local');
    alice = createSystemUser(`sgh1a${tag}`, homeRoot);
    bob = createSystemUser(`sgh1b${tag}`, homeRoot);
    spawnSync('groupdel', [group], { stdio: 'ignore' });
    execFileSync('groupadd', [group]);
    execFileSync('usermod', ['-aG', group, alice.name]);
    groupId = Number(execFileSync('getent', ['group', group], { encoding: 'utf8' }).split(':')[2]);
    mkdirSync(path.join(homeRoot, 'rootowned'));
    backend = createLocalBackend({ stateDir, logger: silent, identity: { homeRoot } });
  });
  afterEach(async () => {
    await Promise.all(names.splice(0).map((x) => backend.stop(x, { graceSeconds: 0 }).catch(() => undefined)));
  });
  afterAll(async () => {
    await backend?.close();
    removeSystemUsers([alice, bob].filter(Boolean));
    spawnSync('groupdel', [group], { stdio: 'ignore' });
    rmSync(homeRoot, { recursive: true, force: true });
    rmSync(path.dirname(stateDir), { recursive: true, force: true });
  });

  test("a workload runs as the home's owner, with the owner's supplementary groups, HOME and working directory", async () => {
    const s = spec(alice.name, { workingDir: '/tmp' });
    const state = await backend.ensure(s);
    const probe = await probeOf(backend, s.name);
    expect(probe).toMatchObject({ uid: alice.uid, gid: alice.gid, home: alice.home, cwd: alice.home });
    expect(probe.groups).toEqual(expect.arrayContaining([alice.gid, groupId]));
    expect(probe.groups).not.toContain(0);
    // What the kernel sees agrees with what the OS says about the process.
    const status = readFileSync(`/proc/${state.ref!.pid as number}/status`, 'utf8');
    expect(status).toMatch(new RegExp(`^Uid:\\s+${alice.uid}\\s+${alice.uid}\\s+${alice.uid}\\s+${alice.uid}$`, 'm'));
  });

  test('a working directory inside the home is kept', async () => {
    const sub = path.join(alice.home, 'work');
    mkdirSync(sub, { recursive: true });
    chownSync(sub, alice.uid, alice.gid);
    const s = spec(alice.name, { workingDir: sub });
    await backend.ensure(s);
    expect((await probeOf(backend, s.name)).cwd).toBe(sub);
  });

  test("a secret in spawngate's environment is absent from the workload's /proc/<pid>/environ", async () => {
    const secret = `sg-secret-${tag}`;
    process.env.SG_TENANCY_SECRET = secret;
    try {
      const s = spec(alice.name);
      const state = await backend.ensure(s);
      await probeOf(backend, s.name);
      const environ = readFileSync(`/proc/${state.ref!.pid as number}/environ`, 'utf8').split('\0').filter(Boolean);
      expect(environ.join('\n')).not.toContain(secret);
      expect(environ.sort()).toEqual([`HOME=${alice.home}`, `KERNEL_USERNAME=${alice.name}`, 'PATH=/usr/bin:/bin']);
    } finally {
      delete process.env.SG_TENANCY_SECRET;
    }
  });

  test("alice's workload can neither list the state directory nor read another workload's log", async () => {
    const bobs = spec(bob.name);
    await backend.ensure(bobs);
    await probeOf(backend, bobs.name);
    const bobLog = path.join(stateDir, `${bobs.name}.log`);
    const s = spec(alice.name);
    s.command = [...s.command, `${stateDir}/`, bobLog, path.join(stateDir, `${bobs.name}.json`)];
    await backend.ensure(s);
    const probe = await probeOf(backend, s.name);
    expect(probe).toMatchObject({ list0: 'PermissionError', list1: 'PermissionError', list2: 'PermissionError' });
    // …while its own output still reaches its log, through the descriptor spawngate opened.
    expect((await backend.logs(s.name, 5)).join('\n')).toContain(`"uid": ${alice.uid}`);
    expect(asUser(alice, `ls ${stateDir}`).status).not.toBe(0);
  });

  test('a root-owned home is refused, naming the home and the setting; allowed when configured', async () => {
    const s = spec('rootowned');
    const err = await backend.ensure(s).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentBackendError);
    expect((err as Error).message).toContain(path.join(homeRoot, 'rootowned'));
    expect((err as Error).message).toContain('SPAWNGATE_LOCAL_ALLOW_ROOT');
    expect((await backend.state(s.name)).phase).toBe('missing');
    const permissive = createLocalBackend({ stateDir, logger: silent, identity: { homeRoot, allowRoot: true } });
    try {
      const t = spec('rootowned');
      await permissive.ensure(t);
      expect(await probeOf(permissive, t.name)).toMatchObject({ uid: 0, home: path.join(homeRoot, 'rootowned') });
    } finally {
      await permissive.close();
    }
  });

  test('a missing home, or a spec naming no user, is a clear permanent error', async () => {
    await expect(backend.ensure(spec(`nobody${tag}`))).rejects.toThrow(
      new RegExp(`home directory ${path.join(homeRoot, `nobody${tag}`)} of user nobody${tag} does not exist`),
    );
    const anonymous = spec(alice.name);
    anonymous.env = { PATH: '/usr/bin:/bin' };
    await expect(backend.ensure(anonymous)).rejects.toThrow(/names no user \(KERNEL_USERNAME\)/);
  });

  test('runAs answers the identity a workload of that user gets', async () => {
    await expect(backend.runAs(alice.name)).resolves.toEqual({ uid: alice.uid, gid: alice.gid, home: alice.home });
    await expect(workloadIdentity(homeRoot, bob.name)).resolves.toEqual({ uid: bob.uid, gid: bob.gid, home: bob.home });
    await expect(workloadIdentity(homeRoot, 'rootowned')).rejects.toThrow(PermanentBackendError);
  });

  test('the service builds the local backend with per-user identities by default, and warns at start-up when users share one', async () => {
    const build = (env: Record<string, string>) => {
      const warnings: string[] = [];
      const log = { debug: () => undefined, info: () => undefined, warn: (m: string) => void warnings.push(m), child: () => log } as unknown as Logger;
      const config = loadConfig({ SPAWNGATE_DATA_DIR: path.join(path.dirname(stateDir), `data-${warnings.length}-${Object.keys(env).length}`), SPAWNGATE_HOME_ROOT: homeRoot, ...env });
      return { backend: createBackend(config, log) as LocalBackend, warnings };
    };
    const perUser = build({});
    expect(perUser.warnings).toEqual([]);
    await expect(perUser.backend.runAs(alice.name)).resolves.toMatchObject({ uid: alice.uid, gid: alice.gid });
    await expect(perUser.backend.runAs('rootowned')).rejects.toThrow(/SPAWNGATE_LOCAL_ALLOW_ROOT/);
    await perUser.backend.close();
    const shared = build({ SPAWNGATE_LOCAL_SHARED_IDENTITY: '1' });
    expect(shared.warnings).toEqual([expect.stringMatching(/SPAWNGATE_LOCAL_SHARED_IDENTITY is set: every user's workloads run as spawngate's own user/)]);
    await expect(shared.backend.runAs(alice.name)).resolves.toMatchObject({ uid: 0, gid: 0, home: alice.home });
    // Shared identity promises no isolation: a user without a directory runs with the spec's own HOME.
    await expect(shared.backend.runAs(`nohome${tag}`)).resolves.toEqual({ uid: 0, gid: 0 });
    await shared.backend.close();
  });

  describe('spawngate not root (run as a real system user)', () => {
    /** Runs tests/tenancy/local-identity-probe.ts as `user`: ensures one workload per listed user, prints outcomes. */
    const runAsSpawngate = (user: SystemUser, shared: boolean, users: string[]) => {
      const dir = mkdtempSync(path.join(os.tmpdir(), 'sg-id-nonroot-'));
      chownSync(dir, user.uid, user.gid);
      const script = path.join(dir, 'probe.ts');
      writeFileSync(
        script,
        `import { createLocalBackend } from ${JSON.stringify(path.join(REPO, 'src/backends/local'))};
const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined };
(async () => {
  const b = createLocalBackend({ stateDir: ${JSON.stringify(path.join(dir, 'state'))}, logger: silent as never, identity: { homeRoot: ${JSON.stringify(homeRoot)}, shared: ${shared} } });
  const out: Record<string, string> = { warning: b.sharedIdentityWarning() ?? '' };
  let i = 0;
  for (const u of ${JSON.stringify(users)}) {
    const name = 'sg-nr-' + (++i);
    try {
      await b.ensure({ name, kind: 'kernel', labels: {}, command: ['/bin/sh', '-c', 'id -u; sleep 30'], env: { KERNEL_USERNAME: u, PATH: '/usr/bin:/bin' } });
      out[u] = 'started';
    } catch (e) { out[u] = (e as Error).name + ': ' + (e as Error).message; }
  }
  await b.close({ stopAll: true });
  console.log(JSON.stringify(out));
})();`,
      );
      const tsx = path.join(REPO, 'node_modules/.bin/tsx');
      const r = asUser(user, `cd ${dir} && HOME=${dir} ${tsx} ${script}`, { timeoutMs: 60_000 });
      rmSync(dir, { recursive: true, force: true });
      const line = r.stdout.trim().split('\n').pop() ?? '';
      if (!line.startsWith('{')) throw new Error(`probe failed (${r.status}): ${r.stdout}\n${r.stderr}`);
      return JSON.parse(line) as Record<string, string>;
    };

    test('serves its own user and refuses a second one with an actionable message', () => {
      const out = runAsSpawngate(alice, false, [alice.name, bob.name]);
      expect(out[alice.name]).toBe('started');
      expect(out[bob.name]).toMatch(/^PermanentBackendError: spawngate runs as uid \d+, not root/);
      expect(out[bob.name]).toContain('SPAWNGATE_LOCAL_SHARED_IDENTITY=1');
      expect(out.warning).toMatch(/not root/);
    }, 90_000);

    test('with the shared identity opted into, serves several users as itself and says so', () => {
      // The demo's layout: every user's directory belongs to spawngate's own user.
      const demo = [`demo1${tag}`, `demo2${tag}`];
      for (const d of demo) {
        mkdirSync(path.join(homeRoot, d));
        chownSync(path.join(homeRoot, d), alice.uid, alice.gid);
      }
      const out = runAsSpawngate(alice, true, demo);
      expect(out).toMatchObject({ [demo[0]!]: 'started', [demo[1]!]: 'started' });
      expect(out.warning).toMatch(/SPAWNGATE_LOCAL_SHARED_IDENTITY is set/);
    }, 90_000);
  });
}
