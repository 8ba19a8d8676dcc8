/**
 * The shared contract suite every backend runs (local now, docker and kubernetes later), in the way
 * unstorage's drivers share one suite: `testBackend({ name, create, makeSpec, skip })`. A backend
 * that cannot pass a test lists it in `skip` with the reason; nothing is skipped silently.
 *
 * Workloads are small Python programs: `python` (default `/usr/bin/python3`) must exist where the
 * backend runs them (on this machine for local, in the image `makeSpec` sets for containers).
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { PermanentBackendError, UnsupportedError, type Backend, type WorkloadEvent, type WorkloadSpec, type WorkloadState } from '../../src/backends/types';

export interface ForeignWorkload {
  /** Whether it still exists, untouched. */
  exists: () => Promise<boolean>;
  remove: () => Promise<void>;
}
import { pollUntil as waitFor } from '../support/wait';

export interface BackendUnderTest {
  backend: Backend;
  /** Removes whatever the test left (workloads are already stopped by the suite). */
  cleanup: () => Promise<void>;
  /** Another instance over the same workloads (same engine, namespace or state directory), as a second replica or a restarted spawngate. */
  another: () => Backend;
  /** Makes a workload of that name that spawngate did not create; absent where none can exist (skip it with the reason). */
  makeForeign?: (name: string) => Promise<ForeignWorkload>;
}

export interface ContractOptions {
  name: string;
  create: () => Promise<BackendUnderTest>;
  /** A valid spec for this backend; the suite passes name, command, env, ports, labels as overrides. */
  makeSpec: (overrides: Partial<WorkloadSpec> & { name: string }) => WorkloadSpec;
  skip?: { reason: string; tests: string[] }[];
  /** Python interpreter path inside the workload's environment. */
  python?: string;
  /** Upper bound for a workload to start/exit (container backends may need more). Default 15 s. */
  timeoutMs?: number;
}

export const CONTRACT_TESTS = [
  'ensure starts a running workload',
  'ensure is idempotent',
  'concurrent ensure creates one workload',
  'state of an unknown workload is missing',
  'stop is idempotent, also for a missing workload',
  'an exited workload reports exit code and reason',
  'list includes our workload with its labels',
  'logs returns the last lines, oldest first',
  'ports are substituted and reachable over TCP',
  'env is passed exactly, nothing inherited',
  'stop escalates to SIGKILL when SIGTERM is ignored',
  'signal reaches the workload exactly when the backend declares it can',
  'watch reports an exit',
  'a second instance adopts the workload instead of creating another',
  'close leaves workloads running for the next instance',
  'ensure after the workload exited starts it afresh',
  'a foreign workload with the same name is refused, never adopted or removed',
  'an invalid spec is a PermanentBackendError',
  'a watch listener that throws does not stop the others',
] as const;
export type ContractTest = (typeof CONTRACT_TESTS)[number];

/** Connects to host:port and returns the first line the server sends. */
export function readLine(host: string, port: number, timeoutMs = 5_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host, port });
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no line from ${host}:${port} within ${timeoutMs} ms (got ${JSON.stringify(data)})`));
    }, timeoutMs);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      data += chunk;
      const nl = data.indexOf('\n');
      if (nl >= 0) {
        clearTimeout(timer);
        socket.destroy();
        resolve(data.slice(0, nl));
      }
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** A Python program that prints `ready` once set up, then sleeps. */
export const SLEEP_FOREVER = 'import time\nprint("ready", flush=True)\nwhile True: time.sleep(60)';

export function testBackend(opts: ContractOptions): void {
  const python = opts.python ?? '/usr/bin/python3';
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const skipped = new Map<string, string>();
  for (const s of opts.skip ?? []) for (const t of s.tests) skipped.set(t, s.reason);

  describe(`backend contract: ${opts.name}`, () => {
    let backend: Backend;
    let cleanup: () => Promise<void>;
    let under: BackendUnderTest;
    const started: string[] = [];
    const run = randomBytes(3).toString('hex');
    let counter = 0;

    /** A unique valid workload name, stopped after the test. */
    const newName = () => {
      const name = `sg-ct-${run}-${++counter}`;
      started.push(name);
      return name;
    };
    const py = (code: string, overrides: Partial<WorkloadSpec> = {}): WorkloadSpec =>
      opts.makeSpec({ name: newName(), command: [python, '-u', '-c', code], env: {}, ...overrides });
    const logsUntil = (name: string, ok: (lines: string[]) => boolean, lines = 50) =>
      waitFor(() => backend.logs!(name, lines), ok, timeoutMs);

    beforeAll(async () => {
      under = await opts.create();
      ({ backend, cleanup } = under);
    });
    afterEach(async () => {
      await Promise.all(
        started.splice(0).map((n) => backend.stop(n, { graceSeconds: 0 }).catch(() => undefined)),
      );
    });
    afterAll(async () => {
      await backend?.close();
      await cleanup?.();
    });

    const contract = (title: ContractTest, fn: () => Promise<void>) => {
      const reason = skipped.get(title);
      if (reason) test.skip(`${title} — skipped: ${reason}`, fn);
      else test(title, fn, timeoutMs * 3);
    };

    contract('ensure starts a running workload', async () => {
      const spec = py(SLEEP_FOREVER);
      const first = await backend.ensure(spec);
      expect(first.name).toBe(spec.name);
      expect(['pending', 'running']).toContain(first.phase);
      const state = await waitFor(
        () => backend.state(spec.name),
        (s) => s.phase === 'running',
        timeoutMs,
      );
      expect(state.phase).toBe('running');
      expect(state.ref).toBeDefined();
    });

    contract('ensure is idempotent', async () => {
      const spec = py(SLEEP_FOREVER);
      const a = await backend.ensure(spec);
      const b = await backend.ensure(spec);
      expect(b.ref).toEqual(a.ref);
      expect((await backend.list()).filter((s) => s.name === spec.name)).toHaveLength(1);
    });

    contract('concurrent ensure creates one workload', async () => {
      const spec = py(SLEEP_FOREVER);
      const states = await Promise.all([backend.ensure(spec), backend.ensure(spec), backend.ensure(spec)]);
      expect(states[1]!.ref).toEqual(states[0]!.ref);
      expect(states[2]!.ref).toEqual(states[0]!.ref);
      expect((await backend.list()).filter((s) => s.name === spec.name)).toHaveLength(1);
    });

    contract('state of an unknown workload is missing', async () => {
      const state = await backend.state(`sg-ct-${run}-never-created`);
      expect(state.phase).toBe('missing');
    });

    contract('stop is idempotent, also for a missing workload', async () => {
      await expect(backend.stop(`sg-ct-${run}-never-created`)).resolves.toBeUndefined();
      const spec = py(SLEEP_FOREVER);
      await backend.ensure(spec);
      await backend.stop(spec.name, { graceSeconds: 2 });
      expect((await backend.state(spec.name)).phase).toBe('missing');
      await expect(backend.stop(spec.name)).resolves.toBeUndefined();
      expect((await backend.list()).map((s) => s.name)).not.toContain(spec.name);
    });

    contract('an exited workload reports exit code and reason', async () => {
      const spec = py('import sys\nprint("bye", flush=True)\nsys.exit(3)');
      await backend.ensure(spec);
      const state = await waitFor(
        () => backend.state(spec.name),
        (s) => s.phase === 'exited',
        timeoutMs,
      );
      expect(state.phase).toBe('exited');
      expect(state.exitCode).toBe(3);
      expect(state.reason).toMatch(/3/);
      await backend.stop(spec.name);
      expect((await backend.state(spec.name)).phase).toBe('missing');
    });

    contract('list includes our workload with its labels', async () => {
      const spec = py(SLEEP_FOREVER, { labels: { 'spawngate.test/run': run } });
      await backend.ensure(spec);
      const mine = (await backend.list()).find((s) => s.name === spec.name);
      expect(mine).toBeDefined();
      expect(mine!.labels).toMatchObject({ 'spawngate.test/run': run });
      expect(['pending', 'running']).toContain(mine!.phase);
    });

    contract('logs returns the last lines, oldest first', async () => {
      const spec = py(
        'import sys, time\nfor i in range(1, 51): print(i)\nprint("err", file=sys.stderr, flush=True)\ntime.sleep(600)',
      );
      await backend.ensure(spec);
      const lines = await logsUntil(spec.name, (l) => l.includes('err'), 4);
      expect(lines).toEqual(['48', '49', '50', 'err']);
    });

    contract('ports are substituted and reachable over TCP', async () => {
      const code = [
        'import os, socket, sys',
        's = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
        's.bind(("", int(sys.argv[1]))); s.listen(5)',
        'print("ready", flush=True)',
        'while True:',
        '    c, _ = s.accept()',
        '    c.sendall(("%s %s %s\\n" % (sys.argv[1], sys.argv[2], os.environ["EXTRA_PORT"])).encode()); c.close()',
      ].join('\n');
      const spec = py(code, { ports: { default: 0, extra: 0 }, env: { EXTRA_PORT: 'p={port:extra}' } });
      spec.command = [...spec.command, '{port}', '--extra={port:extra}'];
      const ensured = await backend.ensure(spec);
      const state = await waitFor(
        () => backend.state(spec.name),
        (s) => s.phase === 'running' && !!s.host,
        timeoutMs,
      );
      const { default: port, extra } = state.ports ?? ensured.ports ?? {};
      expect(port).toBeGreaterThan(0);
      expect(extra).toBeGreaterThan(0);
      expect(extra).not.toBe(port);
      await logsUntil(spec.name, (l) => l.includes('ready'));
      expect(await readLine(state.host!, port!)).toBe(`${port} --extra=${extra} p=${extra}`);
    });

    contract('env is passed exactly, nothing inherited', async () => {
      const secret = `not-for-workloads-${run}`;
      process.env.SG_CONTRACT_SECRET = secret;
      try {
        const spec = py('import json, os\nprint(json.dumps(dict(os.environ)), flush=True)', {
          env: { ONLY_THIS: 'yes' },
        });
        await backend.ensure(spec);
        const lines = await logsUntil(spec.name, (l) => l.some((x) => x.startsWith('{')));
        const env = JSON.parse(lines.find((x) => x.startsWith('{'))!) as Record<string, string>;
        expect(env.ONLY_THIS).toBe('yes');
        expect(env.SG_CONTRACT_SECRET).toBeUndefined();
        expect(Object.values(env)).not.toContain(secret);
      } finally {
        delete process.env.SG_CONTRACT_SECRET;
      }
    });

    contract('stop escalates to SIGKILL when SIGTERM is ignored', async () => {
      const spec = py(
        'import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint("ready", flush=True)\nwhile True: time.sleep(60)',
      );
      await backend.ensure(spec);
      await logsUntil(spec.name, (l) => l.includes('ready'));
      const t0 = Date.now();
      await backend.stop(spec.name, { graceSeconds: 1 });
      const took = Date.now() - t0;
      expect(took).toBeGreaterThanOrEqual(900);
      expect(took).toBeLessThan(timeoutMs);
      expect((await backend.state(spec.name)).phase).toBe('missing');
    });

    contract('signal reaches the workload exactly when the backend declares it can', async () => {
      const spec = py(
        'import signal, time\nsignal.signal(signal.SIGUSR1, lambda *a: print("got usr1", flush=True))\nprint("ready", flush=True)\nwhile True: time.sleep(60)',
      );
      await backend.ensure(spec);
      await logsUntil(spec.name, (l) => l.includes('ready'));
      if (backend.capabilities.signal) {
        expect(backend.signal).toBeInstanceOf(Function);
        await backend.signal!(spec.name, 'SIGUSR1');
        expect(await logsUntil(spec.name, (l) => l.includes('got usr1'))).toContain('got usr1');
        return;
      }
      // Declared unable: the method is absent or refuses, and nothing reaches the workload.
      if (backend.signal) await expect(backend.signal(spec.name, 'SIGUSR1')).rejects.toBeInstanceOf(UnsupportedError);
      else expect(backend.signal).toBeUndefined();
      await new Promise((r) => setTimeout(r, 1_000));
      expect(await backend.logs!(spec.name, 50)).not.toContain('got usr1');
      expect((await backend.state(spec.name)).phase).toBe('running');
    });

    contract('watch reports an exit', async () => {
      const events: WorkloadEvent[] = [];
      const unsubscribe = backend.watch!((e) => events.push(e));
      try {
        const spec = py('import time\ntime.sleep(0.5)\nraise SystemExit(7)');
        await backend.ensure(spec);
        const exited = (): WorkloadState | undefined =>
          events.find((e) => e.name === spec.name && e.type === 'state' && e.state?.phase === 'exited')
            ?.state;
        await waitFor(
          async () => exited(),
          (s) => !!s,
          timeoutMs,
        );
        expect(exited()?.exitCode).toBe(7);
      } finally {
        unsubscribe();
      }
    });

    contract('a second instance adopts the workload instead of creating another', async () => {
      const spec = py(SLEEP_FOREVER);
      const first = await backend.ensure(spec);
      await waitFor(() => backend.state(spec.name), (x) => x.phase === 'running', timeoutMs);
      const other = under.another();
      try {
        const events: WorkloadEvent[] = [];
        const adopted = await other.ensure(spec, (e) => events.push(e));
        expect(adopted.ref).toEqual(first.ref);
        expect(events.filter((e) => e.type === 'progress').map((e) => e.message)).not.toContainEqual(expect.stringMatching(/^(starting|created)/));
        expect((await other.list()).filter((x) => x.name === spec.name)).toHaveLength(1);
        expect((await waitFor(() => other.state(spec.name), (x) => x.phase === 'running', timeoutMs)).ref).toEqual(first.ref);
      } finally {
        await other.close();
      }
    });

    contract('close leaves workloads running for the next instance', async () => {
      const spec = py(SLEEP_FOREVER);
      const first = under.another();
      const started = await first.ensure(spec);
      await waitFor(() => first.state(spec.name), (x) => x.phase === 'running', timeoutMs);
      await first.close();
      const next = under.another();
      try {
        const state = await waitFor(() => next.state(spec.name), (x) => x.phase === 'running', timeoutMs);
        expect(state.phase).toBe('running');
        expect(state.ref).toEqual(started.ref);
        await next.stop(spec.name, { graceSeconds: 0 });
        expect((await next.state(spec.name)).phase).toBe('missing');
      } finally {
        await next.close();
      }
    });

    contract('ensure after the workload exited starts it afresh', async () => {
      const exits = py('import sys\nsys.exit(3)');
      const first = await backend.ensure(exits);
      await waitFor(() => backend.state(exits.name), (x) => x.phase === 'exited', timeoutMs);
      // Same name, now a program that stays up: the exited workload is replaced, not reported again.
      const again = opts.makeSpec({ name: exits.name, command: [python, '-u', '-c', SLEEP_FOREVER], env: {} });
      const second = await backend.ensure(again);
      expect(['pending', 'running']).toContain(second.phase);
      const running = await waitFor(() => backend.state(exits.name), (x) => x.phase === 'running', timeoutMs);
      expect(running.phase).toBe('running');
      expect(running.ref).not.toEqual(first.ref);
      expect((await backend.list()).filter((x) => x.name === exits.name)).toHaveLength(1);
    });

    contract('a foreign workload with the same name is refused, never adopted or removed', async () => {
      const name = newName();
      const foreign = await under.makeForeign!(name);
      try {
        const refused = await backend.ensure(opts.makeSpec({ name, command: [python, '-c', SLEEP_FOREVER], env: {} })).catch((e: unknown) => e);
        expect(refused).toBeInstanceOf(PermanentBackendError);
        expect((refused as Error).message).toMatch(/not managed by spawngate/);
        await expect(backend.stop(name, { graceSeconds: 0 })).rejects.toThrow(PermanentBackendError);
        expect((await backend.state(name)).phase).toBe('missing');
        expect((await backend.list()).map((x) => x.name)).not.toContain(name);
        expect(await foreign.exists()).toBe(true);
      } finally {
        await foreign.remove();
      }
    });

    contract('an invalid spec is a PermanentBackendError', async () => {
      for (const bad of ['Not_A_DNS_Label', '../escape', 'x'.repeat(64)]) {
        await expect(backend.ensure(opts.makeSpec({ name: bad, command: [python, '-c', 'pass'], env: {} }))).rejects.toThrow(PermanentBackendError);
      }
      await expect(backend.ensure(opts.makeSpec({ name: newName(), command: [], env: {} }))).rejects.toThrow(PermanentBackendError);
      await expect(backend.ensure(opts.makeSpec({ name: newName(), command: [''], env: {} }))).rejects.toThrow(PermanentBackendError);
    });

    contract('a watch listener that throws does not stop the others', async () => {
      const events: WorkloadEvent[] = [];
      let thrown = 0;
      const offThrower = backend.watch!(() => {
        thrown++;
        throw new Error('a careless listener');
      });
      const off = backend.watch!((e) => events.push(e));
      try {
        const spec = py('import time\ntime.sleep(0.5)\nraise SystemExit(5)');
        await backend.ensure(spec);
        const exited = await waitFor(
          async () => events.find((e) => e.name === spec.name && e.type === 'state' && e.state?.phase === 'exited'),
          (e) => !!e,
          timeoutMs,
        );
        expect(exited?.state?.exitCode).toBe(5);
        expect(thrown).toBeGreaterThan(0);
        // The backend itself still works (the kubernetes informer callback survived the throw).
        expect((await waitFor(() => backend.state(spec.name), (x) => x.phase === 'exited', timeoutMs)).exitCode).toBe(5);
      } finally {
        offThrower();
        off();
      }
    });
  });
}
