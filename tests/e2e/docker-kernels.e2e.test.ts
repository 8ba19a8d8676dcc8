/**
 * End to end on the docker backend against a real engine (podman's Docker API): the spawngate CLI
 * with SPAWNGATE_BACKEND=docker, Postgres and BullMQ on Redis, launches kernels through the gateway
 * API into containers of the busybox test image (the host's Debian Python bind-mounted read-only).
 *
 * - code runs in the container, as the home owner, with the experiment's limits (inspect and cgroup),
 *   and the kernel's key is nowhere in the container's inspect data; interrupt reaches the kernel;
 * - restart gives a new container that still answers (same connection info, new published ports);
 * - a container killed from outside is reported dead with the reason;
 * - an unknown image and an engine that is away fail the launch with a clear message, and what runs
 *   is not lost;
 * - spawngate killed mid-launch and restarted: the launch completes with exactly one container.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Docker from 'dockerode';
import type WebSocket from 'ws';
import { createTestPostgres, type TestPostgres } from '../db/helpers';
import { connectWs, execute } from '../support/jupyter-ws';
import { HOST_BINDS, PODMAN_DIR, SHIM_BIND, TEST_IMAGE, TEST_LAUNCHER, TEST_UID, podman, prepareEngine, skipLoudly } from '../support/podman';
import { ROOT, startProcess, startSpawngate, tmpDir, waitFor, type Spawngate } from './harness';

jest.setTimeout(180_000);

const engine = prepareEngine();

if (engine.unavailable) {
  skipLoudly('docker kernels end to end', engine.unavailable);
} else {
  const socketPath = engine.socketPath!;
  const docker = new Docker({ socketPath });
  const run = Math.random().toString(16).slice(2, 8);
  const prefix = `sgtest-${run}`;
  const missingImage = `localhost/sg-missing-${run}:v1`;

  // alice's home, owned by the uid containers run as; a conda env with a kernelspec, and two more.
  const homes = tmpDir('sg-docker-homes');
  const home = path.join(homes, 'alice');
  const writeSpec = (dir: string, spec: object) => {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'kernel.json'), JSON.stringify(spec));
  };
  const ipykernel = ['/usr/bin/python3', '-m', 'ipykernel_launcher', '-f', '{connection_file}'];
  writeSpec(path.join(home, '.conda', 'envs', 'tf', 'share', 'jupyter', 'kernels', 'python3'), { argv: ipykernel, display_name: 'TF', language: 'python' });
  // Slow to answer (3 s in a shell first), so spawngate can be killed mid-launch.
  writeSpec(path.join(home, '.local', 'share', 'jupyter', 'kernels', 'slow'), {
    argv: ['/bin/sh', '-c', 'sleep 3; exec /usr/bin/python3 -m ipykernel_launcher -f "$0"', '{connection_file}'],
    display_name: 'Slow',
    language: 'python',
    metadata: { spawngate: { environment: 'tf' } },
  });
  writeSpec(path.join(home, '.local', 'share', 'jupyter', 'kernels', 'missing'), {
    argv: ipykernel,
    display_name: 'Missing image',
    language: 'python',
    metadata: { spawngate: { environment: 'tf' }, process_proxy: { config: { image_name: missingImage } } },
  });
  execFileSync('chown', ['-R', `${TEST_UID}:${TEST_UID}`, home]);

  // The engine is reached through a symlink the test can remove ("daemon away") and restore.
  const sockDir = tmpDir('sg-docker-sock');
  const sockLink = path.join(sockDir, 'engine.sock');
  fs.symlinkSync(socketPath, sockLink);

  const configFile = path.join(tmpDir('sg-docker-config'), 'spawngate.yaml');
  fs.writeFileSync(
    configFile,
    [
      'kernels:',
      `  image: ${TEST_IMAGE}`,
      `  launcher: ${JSON.stringify(TEST_LAUNCHER)}`,
      `  allowed_images: [${JSON.stringify(missingImage)}]`,
      'docker:',
      `  extra_binds: ${JSON.stringify([...HOST_BINDS, SHIM_BIND])}`,
      `  label_prefix: ${prefix}`,
    ].join('\n'),
  );

  let pg: TestPostgres;
  let sg: Spawngate;
  let env: NodeJS.ProcessEnv;
  let token: string;

  const api = async <T = Record<string, unknown>>(method: string, p: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${sg.url}${p}`, {
      method,
      headers: { Authorization: `token ${token}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : {}) as T };
  };
  const channels = (id: string): Promise<WebSocket> =>
    connectWs(`${sg.url.replace('http', 'ws')}/api/kernels/${id}/channels`, { Authorization: `token ${token}` });
  /** Our containers (by the test's label prefix), optionally only one kernel's. */
  const containers = async (kernelId?: string) =>
    (await docker.listContainers({ all: true, filters: { label: [`${prefix}.managed=true`] } })).filter(
      (c) => kernelId === undefined || c.Labels.kernel_id === kernelId,
    );
  const kernelRow = async (id: string) =>
    (await pg.db.query<{ state: string; message: string | null }>('SELECT state, message FROM kernels WHERE id = $1', [id]))[0];

  beforeAll(async () => {
    pg = await createTestPostgres();
    sg = await startSpawngate({
      env: {
        SPAWNGATE_BACKEND: 'docker',
        DOCKER_HOST: `unix://${sockLink}`,
        SPAWNGATE_CONFIG: configFile,
        SPAWNGATE_DATABASE_URL: pg.url,
        SPAWNGATE_REDIS_URL: 'redis://127.0.0.1:6379',
        SPAWNGATE_QUEUE_PREFIX: `sg-docker-e2e-${run}`,
        // A worker killed mid-launch is noticed within seconds (BullMQ's lock and stalled check).
        SPAWNGATE_JOB_LOCK_SECONDS: '2',
        SPAWNGATE_HOME_ROOT: homes,
      },
    });
    env = sg.env;
    await pg.db.query(`
      INSERT INTO users (username) VALUES ('alice');
      INSERT INTO experiments (name, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib) VALUES ('genomics', 0.25, 0.5, 128, 384);
      INSERT INTO environments (name, experiment_id) SELECT 'tf', id FROM experiments WHERE name = 'genomics';
      INSERT INTO experiment_members (experiment_id, user_id) SELECT e.id, u.id FROM experiments e, users u WHERE e.name = 'genomics' AND u.username = 'alice';
    `);
    token = execFileSync(process.execPath, [path.join(ROOT, 'bin', 'spawngate.js'), 'token', '--user', 'alice'], { env }).toString().trim();
  });

  afterAll(async () => {
    await sg?.stop();
    await pg?.drop();
    await Promise.all((await containers()).map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
  });

  test('a kernel runs code in a container as the home owner, with the limits, and no key in its environment', async () => {
    const started = await api('POST', '/api/kernels', { name: 'conda-env-tf-python3' });
    expect(started.status).toBe(201);
    const id = String(started.body.id);
    const [container] = await containers(id);
    expect(container).toBeDefined();
    const info = await docker.getContainer(container!.Id).inspect();
    expect(info.Config.Image).toBe(TEST_IMAGE);
    expect(info.Config.User).toBe(`${TEST_UID}:${TEST_UID}`);
    expect(info.HostConfig.NanoCpus).toBe(500_000_000);
    expect(info.HostConfig.Memory).toBe(384 * 1048576);
    expect(info.HostConfig.MemoryReservation).toBe(128 * 1048576);
    expect(info.Mounts).toContainEqual(expect.objectContaining({ Type: 'bind', Source: home, Destination: home }));
    expect(info.Config.Env).toContain('SPAWNGATE_CONNECTION_SOURCE=/var/run/spawngate/connection.json');
    expect(info.Config.Env!.some((e) => e.startsWith('SPAWNGATE_CONNECTION_INFO='))).toBe(false);

    const ws = await channels(id);
    try {
      const out = await execute(
        ws,
        [
          'import json, os',
          'def limit(*paths):',
          '    for p in paths:',
          '        if os.path.exists(p): return open(p).read().split()[0]',
          'key = json.load(open(os.environ["SPAWNGATE_CONNECTION_SOURCE"]))["key"]',
          'print(os.getuid(), os.getcwd(), os.environ["HOME"], os.environ["KERNEL_USERNAME"],',
          '      limit("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"),',
          '      "SPAWNGATE_CONNECTION_INFO" in os.environ, key in json.dumps(dict(os.environ)))',
          'print(key)',
        ].join('\n'),
      );
      const [summary, key] = out.stdout.trim().split('\n');
      expect(summary).toBe(`${TEST_UID} ${home} ${home} alice ${384 * 1048576} False False`);
      // The key the kernel read from its file is the one spawngate signs with; it is in no inspect field.
      expect(key).toMatch(/^[0-9a-f]{64}$/);
      expect(JSON.stringify(info)).not.toContain(key!);
      expect((await execute(ws, '6*7')).results).toEqual(['42']);
      // Interrupt: SIGINT through the engine reaches the kernel behind the container's init process.
      const sleeping = execute(ws, 'import time; time.sleep(60)', 40_000);
      await new Promise((r) => setTimeout(r, 1000));
      expect((await api('POST', `/api/kernels/${id}/interrupt`)).status).toBe(204);
      expect((await sleeping).reply.content.ename).toBe('KeyboardInterrupt');
    } finally {
      ws.close();
    }
    expect((await api('DELETE', `/api/kernels/${id}`)).status).toBe(204);
    await waitFor('the container removed', async () => (await containers(id)).length === 0, 20_000);
  });

  test('restart: a new container with the same connection info answers on its new ports', async () => {
    const id = String((await api('POST', '/api/kernels', { name: 'conda-env-tf-python3' })).body.id);
    const before = (await containers(id))[0]!.Id;
    let ws = await channels(id);
    expect((await execute(ws, 'y = 1')).reply.content.status).toBe('ok');
    expect((await api('POST', `/api/kernels/${id}/restart`)).status).toBe(200);
    const after = await containers(id);
    expect(after).toHaveLength(1);
    expect(after[0]!.Id).not.toBe(before);
    // Published host ports changed with the container: spawngate closed the websocket (1001) so the
    // client reconnects to the new address, as jupyter_server's gateway client does.
    if (ws.readyState !== ws.OPEN) ws = await channels(id);
    try {
      await waitFor('kernel answers after restart', async () => (await execute(ws, "print('y' in globals())", 5000)).stdout.trim() === 'False', 30_000, 500);
    } finally {
      ws.close();
    }
    expect((await api('DELETE', `/api/kernels/${id}`)).status).toBe(204);
  });

  test('a container killed from outside: the kernel is reported dead with the reason', async () => {
    const id = String((await api('POST', '/api/kernels', { name: 'conda-env-tf-python3' })).body.id);
    podman(socketPath, 'kill', '--signal', 'KILL', `sg-krn-${id}`);
    await waitFor('kernel dead', async () => (await api('GET', `/api/kernels/${id}`)).body.execution_state === 'dead', 20_000);
    expect((await kernelRow(id))?.message).toMatch(/^kernel process exited with status 137 \(SIGKILL/);
    expect((await api('DELETE', `/api/kernels/${id}`)).status).toBe(204);
    expect(await containers(id)).toHaveLength(0);
  });

  test('an image that does not exist fails the launch with a message naming it, leaving nothing', async () => {
    const res = await api<{ message?: string; reason?: string }>('POST', '/api/kernels', { name: 'missing' });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(JSON.stringify(res.body)).toContain(missingImage);
    const { body: listed } = await api<Array<{ name: string }>>('GET', '/api/kernels');
    expect(listed.filter((k) => k.name === 'missing')).toEqual([]);
    expect((await containers()).filter((c) => c.Image === missingImage)).toHaveLength(0);
  });

  test('the engine down: a launch fails saying the daemon is unreachable; the running kernel is not lost', async () => {
    const id = String((await api('POST', '/api/kernels', { name: 'conda-env-tf-python3' })).body.id);
    // Stop the engine's API service (podman is daemonless: containers keep running under conmon).
    const servicePid = Number(fs.readFileSync(path.join(PODMAN_DIR, 'service.pid'), 'utf8'));
    process.kill(servicePid, 'SIGTERM');
    await waitFor('the engine API down', async () => !(await docker.ping().then(() => true, () => false)), 20_000);
    try {
      const res = await api('POST', '/api/kernels', { name: 'conda-env-tf-python3', env: { KERNEL_LAUNCH_TIMEOUT: '20' } });
      expect(res.status).toBeGreaterThanOrEqual(500);
      expect(JSON.stringify(res.body)).toMatch(/docker daemon unreachable at unix:\/\/.*engine\.sock/);
      // The record of the running kernel is untouched: an unreachable engine is not an empty one.
      expect((await kernelRow(id))?.state).toBe('running');
    } finally {
      expect(prepareEngine().unavailable).toBeUndefined();
    }
    const ws = await channels(id);
    try {
      expect((await execute(ws, '1 + 1')).results).toEqual(['2']);
    } finally {
      ws.close();
    }
    expect((await api('DELETE', `/api/kernels/${id}`)).status).toBe(204);
    expect(await containers(id)).toHaveLength(0);
  });

  test('spawngate refuses to start on a socket path that does not exist, naming it', async () => {
    const bad = startProcess(process.execPath, [path.join(ROOT, 'bin', 'spawngate.js'), 'serve'], {
      env: { ...env, SPAWNGATE_PORT: '0', DOCKER_HOST: 'unix:///nonexistent/docker.sock' },
      cwd: ROOT,
    });
    expect(await bad.exited).toBe(1);
    expect(bad.output()).toMatch(/docker daemon unreachable at unix:\/\/\/nonexistent\/docker\.sock.*is the engine running\?/);
    // Its failed start-up changed nothing: the kernels table is as it was.
    expect(await pg.db.query(`SELECT id FROM kernels WHERE state IN ('starting', 'running')`)).toEqual([]);
  });

  test('spawngate killed mid-launch and restarted: the launch completes with exactly one container', async () => {
    const earlier = new Set((await containers()).map((c) => c.Id));
    const pending = api('POST', '/api/kernels', { name: 'slow' }).catch((err: unknown) => err);
    const [container] = await waitFor('the kernel container', async () => {
      const found = (await containers()).filter((c) => !earlier.has(c.Id));
      return found.length ? found : undefined;
    }, 30_000, 50);
    const id = container!.Labels.kernel_id!;
    sg.child.kill('SIGKILL');
    await sg.exited;
    await pending;
    sg = await startSpawngate({ port: sg.port, dataDir: sg.dataDir, env });
    await waitFor('kernel running after the restart', async () => (await kernelRow(id))?.state === 'running', 60_000, 250).catch((err: Error) => {
      throw new Error(`${err.message}; row ${JSON.stringify(kernelRow(id))}; spawngate said:\n${sg.output().slice(-4000)}`);
    });
    expect((await containers()).filter((c) => !earlier.has(c.Id))).toHaveLength(1);
    expect(await containers(id)).toHaveLength(1);
    const ws = await channels(id);
    try {
      expect((await execute(ws, '2 + 3')).results).toEqual(['5']);
    } finally {
      ws.close();
    }
    expect((await api('DELETE', `/api/kernels/${id}`)).status).toBe(204);
    expect(await containers(id)).toHaveLength(0);
  });
}
