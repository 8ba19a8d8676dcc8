/**
 * The local backend: the shared contract suite, plus what only a local process backend has —
 * adoption after a spawngate restart, the recycled-pid guard, names that must not reach paths,
 * rlimits, and the files in stateDir.
 */
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, promises as fsp, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLocalBackend, type LocalBackend, type LocalBackendOptions } from '../../src/backends/local';
import { PermanentBackendError, type WorkloadEvent, type WorkloadSpec } from '../../src/backends/types';
import { SLEEP_FOREVER, testBackend, waitFor } from './contract';
import { RecentPorts, resolvePorts } from '../../src/backends/local/launch';
import { canCreateUsers, createSystemUser, removeSystemUsers } from '../support/system-users';

const PY = '/usr/bin/python3';
const silent = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
} as unknown as LocalBackendOptions['logger'];

function tempDir(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'sg-local-'));
}

function makeSpec(overrides: Partial<WorkloadSpec> & { name: string }): WorkloadSpec {
  return {
    kind: 'kernel',
    labels: { 'spawngate.io/test': 'yes' },
    command: [PY, '-c', SLEEP_FOREVER],
    env: {},
    ...overrides,
  };
}

const NO_FOREIGN = {
  reason: "local workloads are records in the backend's private (0700) state directory: nothing but spawngate can put a workload of that name there",
  tests: ['a foreign workload with the same name is refused, never adopted or removed'],
};

testBackend({
  name: 'local',
  create: async () => {
    const dir = tempDir();
    return {
      backend: createLocalBackend({ stateDir: dir, logger: silent }),
      another: () => createLocalBackend({ stateDir: dir, logger: silent }),
      cleanup: async () => rmSync(dir, { recursive: true, force: true }),
    };
  },
  makeSpec,
  skip: [NO_FOREIGN],
});

// The same contract with per-user identities, as the service runs it as root: every workload runs as
// the owner of a real system user's home (see tests/tenancy/local-identity.test.ts for the isolation).
const asUserReason = canCreateUsers();
if (asUserReason) {
  console.warn(`\n*** local contract as a system user SKIPPED: ${asUserReason} ***\n`);
  test.skip(`backend contract: local (workloads as a system user) — skipped: ${asUserReason}`, () => undefined);
} else {
  const user = `sgh1ct${process.pid % 100000}`;
  testBackend({
    name: 'local (workloads as a system user)',
    create: async () => {
      const dir = tempDir();
      const homeRoot = tempDir();
      chmodSync(homeRoot, 0o755);
      const owner = createSystemUser(user, homeRoot);
      const make = () => createLocalBackend({ stateDir: path.join(dir, 'state'), logger: silent, identity: { homeRoot } });
      return {
        backend: make(),
        another: make,
        cleanup: async () => {
          removeSystemUsers([owner]);
          rmSync(dir, { recursive: true, force: true });
          rmSync(homeRoot, { recursive: true, force: true });
        },
      };
    },
    makeSpec: (overrides) => {
      const spec = makeSpec(overrides);
      return { ...spec, env: { ...spec.env, KERNEL_USERNAME: user } };
    },
    skip: [NO_FOREIGN],
  });
}

function pidOf(state: { ref?: Record<string, unknown> }): number {
  return state.ref!.pid as number;
}

function startTimeOf(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
}

function recordFor(name: string, pid: number | undefined, startTime: string | null) {
  return {
    version: 1,
    name,
    kind: 'kernel',
    pid,
    startTime,
    bootId: readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(),
    startedAt: new Date().toISOString(),
    host: '127.0.0.1',
    ports: {},
    labels: {},
    command: ['sleep', '30'],
    limits: { applied: [], notApplied: [] },
  };
}

/** Starts a python in its own session whose parent exits at once (so it is re-parented away from us). */
async function startOrphan(): Promise<number> {
  const sh = spawn(
    '/bin/sh',
    ['-c', `${PY} -c "import os, time; os.setsid(); time.sleep(300)" >/dev/null 2>&1 & echo $!`],
    { stdio: ['ignore', 'pipe', 'ignore'] },
  );
  let out = '';
  sh.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  await new Promise((r) => sh.once('close', r));
  const pid = Number(out.trim());
  await waitFor(
    async () => readFileSync(`/proc/${pid}/stat`, 'utf8').split(' ')[5],
    (sid) => sid === String(pid),
    5_000,
  );
  return pid;
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

describe('local backend', () => {
  let dir: string;
  const backends: LocalBackend[] = [];
  const names = new Set<string>();
  let n = 0;
  const make = (extra: Partial<LocalBackendOptions> = {}) => {
    const b = createLocalBackend({ stateDir: dir, logger: silent, ...extra });
    backends.push(b);
    return b;
  };
  const spec = (overrides: Partial<WorkloadSpec> = {}) => {
    const s = makeSpec({ name: `sg-local-${process.pid}-${++n}`, ...overrides });
    names.add(s.name);
    return s;
  };

  beforeEach(() => {
    dir = tempDir();
  });
  afterEach(async () => {
    // Close first: a closed backend no longer records exit statuses, so nothing writes into dir below.
    await Promise.all(backends.splice(0).map((x) => x.close()));
    if (names.size > 0) {
      const b = createLocalBackend({ stateDir: dir, logger: silent });
      await Promise.all([...names].map((name) => b.stop(name, { graceSeconds: 0 }).catch(() => undefined)));
      await b.close();
      names.clear();
    }
    rmSync(dir, { recursive: true, force: true });
  });

  test('a restarted backend adopts a running process and can stop it', async () => {
    const a = make();
    const s = spec();
    const started = await a.ensure(s);
    await a.close(); // spawngate goes away without stopping anything

    const b = make();
    const found = await b.list();
    expect(found.map((x) => [x.name, x.phase])).toEqual([[s.name, 'running']]);
    expect(found[0]!.labels).toEqual(s.labels);
    expect(pidOf(found[0]!)).toBe(pidOf(started));
    const again = await b.ensure(s); // adopts, no second process
    expect(pidOf(again)).toBe(pidOf(started));
    expect(again.ports).toEqual(started.ports);

    await b.stop(s.name, { graceSeconds: 2 });
    expect(alive(pidOf(started))).toBe(false);
    expect((await b.state(s.name)).phase).toBe('missing');
    expect(existsSync(path.join(dir, `${s.name}.json`))).toBe(false);
  });

  test('an adopted process that dies is reported as disappeared, also to watchers', async () => {
    // A process started by "another spawngate": not a child of this test process, so nobody here reaps it.
    const pid = await startOrphan();
    const s = spec();
    await fsp.writeFile(
      path.join(dir, `${s.name}.json`),
      JSON.stringify(recordFor(s.name, pid, startTimeOf(pid))),
    );
    const b = make({ livenessIntervalSeconds: 0.2 });
    const events: WorkloadEvent[] = [];
    b.watch((e) => events.push(e));
    expect((await b.state(s.name)).phase).toBe('running');
    expect(pidOf(await b.ensure(s))).toBe(pid); // adopted, not restarted

    process.kill(-pid, 'SIGKILL');
    const ev = await waitFor(
      async () => events.find((e) => e.name === s.name && e.state?.phase === 'exited'),
      (e) => !!e,
      10_000,
    );
    expect(ev?.state).toMatchObject({ phase: 'exited', reason: 'process disappeared' });
    expect(ev?.state?.exitCode).toBeUndefined();
    expect(await b.state(s.name)).toMatchObject({ phase: 'exited', reason: 'process disappeared' });
    await b.stop(s.name);
    expect((await b.state(s.name)).phase).toBe('missing');
  });

  test('a record whose pid now belongs to another process is never adopted', async () => {
    const stranger = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      const b = make();
      const s = spec();
      const record = recordFor(s.name, stranger.pid, '1'); // not the stranger's start time
      await fsp.writeFile(path.join(dir, `${s.name}.json`), JSON.stringify(record));
      expect((await b.state(s.name)).phase).toBe('missing');
      await expect(b.signal(s.name, 'SIGTERM')).rejects.toBeInstanceOf(PermanentBackendError);
      const fresh = await b.ensure(s);
      expect(fresh.phase).toBe('running');
      expect(pidOf(fresh)).not.toBe(stranger.pid);
      await b.stop(s.name, { graceSeconds: 0 });
      expect(alive(stranger.pid!)).toBe(true); // the stranger was never signalled
    } finally {
      stranger.kill('SIGKILL');
    }
  });

  test('stop of a stale record does not signal the pid it names', async () => {
    const stranger = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      const b = make();
      const s = spec();
      await fsp.writeFile(
        path.join(dir, `${s.name}.json`),
        JSON.stringify(recordFor(s.name, stranger.pid, null)),
      );
      expect((await b.list()).map((x) => x.phase)).toEqual(['missing']);
      await b.stop(s.name, { graceSeconds: 0 });
      expect(alive(stranger.pid!)).toBe(true);
      expect(await b.list()).toEqual([]);
    } finally {
      stranger.kill('SIGKILL');
    }
  });

  test('output is kept after exit and after stop, and rotated by the next ensure', async () => {
    const b = make();
    const s = spec({
      command: [PY, '-c', 'import sys\nprint("hello out")\nprint("hello err", file=sys.stderr)\nsys.exit(2)'],
    });
    const started = await b.ensure(s);
    const state = await waitFor(
      () => b.state(s.name),
      (x) => x.phase === 'exited',
    );
    expect(state).toMatchObject({ phase: 'exited', exitCode: 2, reason: 'exited with status 2' });
    expect((await b.logs(s.name, 10)).sort()).toEqual(['hello err', 'hello out']);
    await waitFor(
      async () => alive(pidOf(started)) || existsSync(`/proc/${pidOf(started)}`),
      (x) => !x,
    );
    expect(existsSync(`/proc/${pidOf(started)}`)).toBe(false); // reaped, no zombie
    await b.stop(s.name);
    expect(await b.logs(s.name, 10)).toHaveLength(2);

    await b.ensure({ ...s, command: [PY, '-c', 'print("second run")'] });
    expect(
      await waitFor(
        () => b.logs(s.name, 10),
        (l) => l.length > 0,
      ),
    ).toEqual(['second run']);
    expect(readFileSync(path.join(dir, `${s.name}.log.1`), 'utf8')).toContain('hello out');
  });

  test('a process killed by a signal reports it', async () => {
    const b = make();
    const s = spec();
    await b.ensure(s);
    await b.signal(s.name, 'SIGKILL');
    const state = await waitFor(
      () => b.state(s.name),
      (x) => x.phase === 'exited',
    );
    expect(state).toMatchObject({ phase: 'exited', exitCode: 137, reason: 'killed by SIGKILL' });
  });

  test('a command that does not exist is a PermanentBackendError', async () => {
    const b = make();
    await expect(b.ensure(spec({ command: ['/nonexistent/definitely-not-here'] }))).rejects.toThrow(
      PermanentBackendError,
    );
    await expect(b.ensure(spec({ command: ['definitely-not-a-command-sg'] }))).rejects.toThrow(
      /command not found: definitely-not-a-command-sg/,
    );
    await expect(b.ensure(spec({ workingDir: path.join(dir, 'nope') }))).rejects.toThrow(
      /working directory does not exist/,
    );
    await expect(b.ensure(spec({ command: [PY, '{port:web}'], ports: { default: 0 } }))).rejects.toThrow(
      PermanentBackendError,
    );
    expect(await b.list()).toEqual([]);
  });

  test.each(['../escape', 'a/b', 'UPPER', 'x'.repeat(64), '', '-lead', 'trail-', 'dot.ted', '..', 'a b'])(
    'hostile name %j is refused before touching the filesystem',
    async (name) => {
      const b = make();
      await expect(b.ensure(makeSpec({ name }))).rejects.toBeInstanceOf(PermanentBackendError);
      await expect(b.stop(name)).rejects.toBeInstanceOf(PermanentBackendError);
      await expect(b.logs(name, 5)).rejects.toBeInstanceOf(PermanentBackendError);
      expect((await b.state(name)).phase).toBe('missing');
      expect(await fsp.readdir(dir)).toEqual([]);
      expect(existsSync(path.join(dir, '..', 'escape.json'))).toBe(false);
    },
  );

  test('a 63-character name is accepted', async () => {
    const b = make();
    const s = spec({ name: `a${'b'.repeat(61)}c` });
    expect((await b.ensure(s)).phase).toBe('running');
  });

  const hasPrlimit = ['/usr/bin/prlimit', '/bin/prlimit'].some(existsSync);
  (hasPrlimit ? test : test.skip)('memoryLimitMiB is enforced with prlimit --as', async () => {
    const b = make();
    const hog = 'b = bytearray(512 * 1024 * 1024)\nprint("allocated")';
    const limited = spec({ command: [PY, '-c', hog], resources: { memoryLimitMiB: 200, cpuLimit: 2 } });
    const st = await b.ensure(limited);
    const limits = st.ref!.limits as { applied: string[]; notApplied: string[] };
    expect(limits.applied.join()).toMatch(/memoryLimitMiB=200/);
    expect(limits.notApplied.join()).toMatch(/cpuLimit=2/);
    const done = await waitFor(
      () => b.state(limited.name),
      (x) => x.phase === 'exited',
    );
    expect(done.exitCode).not.toBe(0);
    expect((await b.logs(limited.name, 20)).join('\n')).toMatch(/MemoryError/);

    const small = spec({
      command: [PY, '-c', 'b = bytearray(20 * 1024 * 1024)\nprint("allocated")'],
      resources: { memoryLimitMiB: 200 },
    });
    await b.ensure(small);
    expect(
      (
        await waitFor(
          () => b.state(small.name),
          (x) => x.phase === 'exited',
        )
      ).exitCode,
    ).toBe(0);
    expect(await b.logs(small.name, 5)).toEqual(['allocated']);
  });

  test('a limit that cannot be applied is recorded, never fatal', async () => {
    const b = make({ prlimit: false });
    const s = spec({ resources: { memoryLimitMiB: 100, gpuLimit: 1 } });
    const st = await b.ensure(s);
    expect(st.phase).toBe('running');
    const limits = st.ref!.limits as { applied: string[]; notApplied: string[] };
    expect(limits.applied).toEqual([]);
    expect(limits.notApplied.join('\n')).toMatch(/memoryLimitMiB=100: prlimit/);
    expect(limits.notApplied.join('\n')).toMatch(/gpuLimit=1/);
  });

  test('fixed ports are used as given; commands resolve on the spec PATH, else the service PATH', async () => {
    const b = make();
    const s = spec({
      command: ['python3', '-c', 'import os, sys\nprint(sys.argv[1], os.environ["P"])', '{port}'],
      ports: { web: 45678 },
      env: { P: '{port:web}', PATH: '/usr/bin:/bin' },
    });
    const st = await b.ensure(s);
    expect(st.ports).toEqual({ web: 45678 });
    expect(
      await waitFor(
        () => b.logs(s.name, 5),
        (l) => l.length > 0,
      ),
    ).toEqual(['45678 45678']);

    const noPath = spec({ command: ['sh', '-c', 'echo "$PATH"'], env: {} });
    await b.ensure(noPath);
    expect(
      await waitFor(
        () => b.logs(noPath.name, 5),
        (l) => l.length > 0,
      ),
    ).toEqual([process.env.PATH]);
  });

  test('two backends on one stateDir start a workload once', async () => {
    const b1 = make();
    const b2 = make();
    const s = spec();
    const [x, y] = await Promise.all([b1.ensure(s), b2.ensure(s)]);
    expect(pidOf(x)).toBe(pidOf(y));
  });

  test('a lock file left by a dead spawngate is taken over', async () => {
    const b = make();
    const s = spec();
    await fsp.writeFile(
      path.join(dir, `${s.name}.lock`),
      JSON.stringify({ pid: 2 ** 22 + 1, startTime: '1' }),
    );
    expect((await b.ensure(s)).phase).toBe('running');
    expect(existsSync(path.join(dir, `${s.name}.lock`))).toBe(false);
  });

  test('an invalid argument is a PermanentBackendError, not a crash', async () => {
    const b = make();
    await expect(b.ensure(spec({ env: { BAD: 'a\u0000b' } }))).rejects.toBeInstanceOf(PermanentBackendError);
  });

  test('stop kills the whole process group, children included', async () => {
    const b = make();
    const s = spec({ command: ['/bin/sh', '-c', 'sleep 300 & echo child $!; wait'] });
    await b.ensure(s);
    const line = (
      await waitFor(
        () => b.logs(s.name, 5),
        (l) => l.some((x) => x.startsWith('child ')),
      )
    ).find((x) => x.startsWith('child '))!;
    const childPid = Number(line.split(' ')[1]);
    expect(alive(childPid)).toBe(true);
    await b.stop(s.name, { graceSeconds: 2 });
    await waitFor(
      async () => alive(childPid),
      (a) => !a,
      5_000,
    );
    expect(alive(childPid)).toBe(false);
  });

  test('close({ stopAll }) stops every workload in stateDir', async () => {
    const a = make();
    const s1 = spec();
    const s2 = spec();
    const p1 = pidOf(await a.ensure(s1));
    const p2 = pidOf(await a.ensure(s2));
    const b = make();
    await b.close({ stopAll: true });
    expect([alive(p1), alive(p2)]).toEqual([false, false]);
    expect(await a.list()).toEqual([]);
  });

  test('logs reads only the end of a large file', async () => {
    const b = make();
    const s = spec();
    const big = 'x'.repeat(1023) + '\n';
    await fsp.writeFile(path.join(dir, `${s.name}.log`), big.repeat(20 * 1024) + 'last-but-one\nlast\n');
    expect(await b.logs(s.name, 2)).toEqual(['last-but-one', 'last']);
    expect(await b.logs(s.name, 0)).toEqual([]);
    expect(await b.logs('sg-no-such-log', 5)).toEqual([]);
  });
});

describe('port choice', () => {
  test('a port handed out recently is never offered again, even when the OS offers it', async () => {
    const recent = new RecentPorts(60_000);
    const first = (await resolvePorts({ default: 0 }, '127.0.0.1', recent)).default!;
    // The OS may offer any number again once its picking listener closed; here it "does" for the next
    // three offers (a recorder stands in for that), and each is refused until a fresh one comes.
    const offered: number[] = [];
    const replay = Object.assign(Object.create(recent) as RecentPorts, {
      has(port: number) {
        offered.push(port);
        return offered.length <= 3 || recent.has(port);
      },
      add: (port: number) => recent.add(port),
    });
    const second = (await resolvePorts({ default: 0 }, '127.0.0.1', replay)).default!;
    expect(offered.length).toBeGreaterThanOrEqual(4);
    expect(offered.slice(0, 3)).not.toContain(second);
    expect(second).not.toBe(first);
    expect(recent.has(first) && recent.has(second)).toBe(true);
    const many = await Promise.all(Array.from({ length: 50 }, () => resolvePorts({ default: 0 }, '127.0.0.1', recent)));
    const ports = many.map((p) => p.default);
    expect(new Set([first, second, ...ports]).size).toBe(52);
  });
});
