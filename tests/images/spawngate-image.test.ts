/**
 * The spawngate image, run as the chart runs it: read-only root (emptyDirs only at /tmp and the data
 * dir), all capabilities dropped, no privilege escalation, its own user. Against the machine's real
 * Postgres (a database of its own) and Redis, on the host network (the container reaches them on
 * 127.0.0.1 as a pod reaches its services):
 * - `migrate` (the chart's hook Job) applies the migrations and exits 0;
 * - `serve` starts as uid 10001, answers /readyz with both checks ok, passes its HEALTHCHECK, serves
 *   the gateway API to a token minted by the image's own CLI and refuses a request without one;
 * - nothing outside the data dir and /tmp is writable; SIGTERM stops it cleanly;
 * - with no database and no Redis configured (`docker run` as is), the embedded Postgres and the
 *   in-process queue start on the read-only root too.
 * Prints the image's size and the cold start from `podman run` to /readyz.
 */
import { randomBytes } from 'node:crypto';
import { createTestPostgres, type TestPostgres } from '../db/helpers';
import { freePort } from '../support/ports';
import { waitFor } from '../support/wait';
import { podman } from '../support/podman';
import { containerLogs, inspectImage, podmanCli, prepareImages, skipLoudly } from './images';

jest.setTimeout(600_000);

const prepared = prepareImages('spawngate');

if (!prepared.images) {
  skipLoudly('spawngate image', prepared.unavailable!);
} else {
  const { images } = prepared;
  const sock = images.socketPath;
  const run = randomBytes(4).toString('hex');
  const name = `sgimg-serve-${run}`;
  const hubToken = `hub-${randomBytes(16).toString('hex')}`;
  let pg: TestPostgres;
  let port: number;
  let env: string[];

  /** podman run flags the chart's securityContext amounts to, plus the test's environment. */
  const restricted = () => [
    '--network', 'host',
    '--read-only',
    // an emptyDir owned by the pod's user (the chart's fsGroup); U: owned by the container's user
    '--tmpfs', '/var/lib/spawngate:rw,U,mode=0700',
    '--cap-drop', 'ALL',
    '--security-opt', 'no-new-privileges',
    ...env.flatMap((e) => ['--env', e]),
  ];

  beforeAll(async () => {
    pg = await createTestPostgres();
    port = await freePort();
    env = [
      `SPAWNGATE_PORT=${port}`,
      `SPAWNGATE_BIND=127.0.0.1`,
      `SPAWNGATE_DATABASE_URL=${pg.url}`,
      'SPAWNGATE_REDIS_URL=redis://127.0.0.1:6379',
      `SPAWNGATE_QUEUE_PREFIX=sg-images-${run}`,
      `SPAWNGATE_HUB_TOKEN=${hubToken}`,
      `SPAWNGATE_ADMIN_TOKEN=admin-${randomBytes(16).toString('hex')}`,
      `SPAWNGATE_SECRET_KEY=${randomBytes(32).toString('base64')}`,
      'SPAWNGATE_LOG_LEVEL=info',
    ];
  });

  afterAll(async () => {
    try {
      podman(sock, 'rm', '--force', '--time', '5', name);
    } catch {
      // never started
    }
    await pg?.drop();
  });

  test(`size: printed (${images.spawngate})`, () => {
    const { size, config } = inspectImage(images.spawngate);
    console.log(`spawngate image ${images.spawngate}: ${(size / 1e6).toFixed(1)} MB; build script took ${images.buildSeconds.toFixed(1)} s this run`);
    expect(size).toBeGreaterThan(50e6);
    expect(config.User).toBe('10001:10001');
  });

  test('`migrate` (the hook Job) migrates the real Postgres, read-only root, and exits 0', async () => {
    const out = podman(sock, 'run', '--rm', ...restricted(), images.spawngate, 'migrate');
    expect(out).toMatch(/^applied: /);
    const versions = await pg.db.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
    expect(versions.length).toBeGreaterThan(0);
    expect(podman(sock, 'run', '--rm', ...restricted(), images.spawngate, 'migrate')).toMatch(/up to date/);
  });

  test('`serve` starts as uid 10001, answers /readyz with Redis and Postgres, and serves the gateway', async () => {
    const url = `http://127.0.0.1:${port}`;
    const started = Date.now();
    podman(sock, 'run', '-d', '--name', name, ...restricted(), images.spawngate);
    const ready = await waitFor(
      'spawngate container /readyz',
      async () => {
        const state = JSON.parse(podman(sock, 'inspect', '--format', '{{json .State}}', name)) as { Running: boolean };
        if (!state.Running) throw new Error(`container exited: ${containerLogs(sock, name).slice(-3000)}`);
        const res = await fetch(`${url}/readyz`).catch(() => undefined);
        return res?.status === 200 ? ((await res.json()) as { checks: Record<string, string> }) : undefined;
      },
      120_000,
      100,
    );
    console.log(`spawngate container: cold start to /readyz ${((Date.now() - started) / 1000).toFixed(2)} s`);
    expect(ready.checks).toEqual({ database: 'ok', queue: 'ok' });

    // its processes run as the image's user, not root
    expect(podman(sock, 'exec', name, 'id', '-u').trim()).toBe('10001');
    const top = podman(sock, 'top', name, 'user', 'args');
    expect(top).toMatch(/^spawngate\s+node bin\/spawngate\.js serve$/m);
    expect(top).not.toMatch(/^root\s/m);

    // the image's HEALTHCHECK passes on a serving container
    expect(() => podmanCli('healthcheck', 'run', name)).not.toThrow();

    // the gateway: without a token refused, with one minted by the image's CLI served
    expect((await fetch(`${url}/api/kernels`)).status).toBe(401);
    await pg.db.query("INSERT INTO users (username) VALUES ('alice')");
    const token = podman(sock, 'exec', name, 'node', 'bin/spawngate.js', 'token', '--user', 'alice').trim();
    expect(token.length).toBeGreaterThan(20);
    const headers = { Authorization: `token ${token}` };
    const version = await fetch(`${url}/api`, { headers });
    expect(version.status).toBe(200);
    expect(await version.json()).toHaveProperty('version');
    const kernels = await fetch(`${url}/api/kernels`, { headers });
    expect(kernels.status).toBe(200);
    expect(await kernels.json()).toEqual([]);
    const specs = await fetch(`${url}/api/kernelspecs`, { headers });
    expect(specs.status).toBe(200);
    expect(await specs.json()).toHaveProperty('kernelspecs');
  });

  test('read-only root: only the data dir and /tmp take writes', () => {
    const tryWrite = (p: string) => podman(sock, 'exec', name, 'sh', '-c', `touch ${p} 2>/dev/null && echo yes || echo no`).trim();
    expect(tryWrite('/app/dist/x')).toBe('no');
    expect(tryWrite('/app/x')).toBe('no');
    expect(tryWrite('/etc/x')).toBe('no');
    expect(tryWrite('/var/lib/spawngate/x')).toBe('yes');
    expect(tryWrite('/tmp/x')).toBe('yes');
  });

  test('SIGTERM stops it cleanly (exit 0)', () => {
    podman(sock, 'stop', '--time', '30', name);
    expect(podman(sock, 'inspect', '--format', '{{.State.ExitCode}}', name).trim()).toBe('0');
  });

  test('the embedded default (no database, no Redis) starts on a read-only root and answers /readyz', async () => {
    const embedded = `${name}-embedded`;
    const p = await freePort();
    podman(sock, 'run', '-d', '--name', embedded, '--network', 'host', '--read-only', '--tmpfs', '/var/lib/spawngate:rw,U,mode=0700', '--cap-drop', 'ALL',
      '--env', `SPAWNGATE_PORT=${p}`, '--env', 'SPAWNGATE_BIND=127.0.0.1', '--env', `SPAWNGATE_HUB_TOKEN=${hubToken}`, images.spawngate);
    try {
      const ready = await waitFor(
        'embedded spawngate /readyz',
        async () => {
          const state = JSON.parse(podman(sock, 'inspect', '--format', '{{json .State}}', embedded)) as { Running: boolean };
          if (!state.Running) throw new Error(`container exited: ${containerLogs(sock, embedded).slice(-3000)}`);
          const res = await fetch(`http://127.0.0.1:${p}/readyz`).catch(() => undefined);
          return res?.status === 200 ? ((await res.json()) as { checks: Record<string, string> }) : undefined;
        },
        180_000,
        200,
      );
      expect(ready.checks).toEqual({ database: 'ok', queue: 'ok' });
      expect(containerLogs(sock, embedded)).toMatch(/"database":"embedded"/);
    } finally {
      podman(sock, 'rm', '--force', '--time', '5', embedded);
    }
  });
}
