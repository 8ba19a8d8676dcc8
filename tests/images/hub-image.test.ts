/**
 * The hub image runs JupyterHub with `spawner_class = "spawngate"` and spawns through the spawngate
 * container: both images run read-only-root on the host network (as two pods reaching each other by
 * service address), spawngate with the docker backend on podman's API, and alice's single-user server
 * starts in a container (the busybox test image with the host's Debian Python, as in
 * tests/e2e/docker-hub-spawn), is reached through the hub's proxy, and is stopped.
 *
 * Here the hub image is built on the local JupyterHub 3.0 stand-in (scripts/build-base-images.sh),
 * not on the z2jh image, which cannot be pulled here: what is proven is docker/hub/Dockerfile's own
 * steps (the spawner installed and registered, the user, the labels) and the spawner working from it.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { createTestPostgres, type TestPostgres } from '../db/helpers';
import { tmpDir, waitFor } from '../e2e/harness';
import { freePorts } from '../support/ports';
import { HOST_BINDS, SHIM_BIND, TEST_IMAGE, TEST_LAUNCHER, TEST_UID, hostAddress, podman } from '../support/podman';
import { containerLogs, prepareImages, skipLoudly } from './images';

jest.setTimeout(600_000);

const prepared = prepareImages('spawngate,hub');

interface HubUser {
  servers: Record<string, { ready: boolean; url: string }>;
}

if (!prepared.images) {
  skipLoudly('hub image', prepared.unavailable!);
} else {
  const { images } = prepared;
  const sock = images.socketPath;
  const docker = new Docker({ socketPath: sock });
  const run = randomBytes(4).toString('hex');
  const prefix = `sgimg-${run}`;
  const hostIp = hostAddress();
  const hubToken = `hub-${randomBytes(16).toString('hex')}`;
  const serviceToken = `svc-${randomBytes(16).toString('hex')}`;
  const names = { sg: `sgimg-sg-${run}`, hub: `sgimg-hub-${run}` };

  const homes = tmpDir('sg-img-hub-homes');
  fs.chmodSync(homes, 0o755); // the service's own user (10001) looks homes up, as on a shared home volume
  fs.mkdirSync(path.join(homes, 'alice'));
  execFileSync('chown', ['-R', `${TEST_UID}:${TEST_UID}`, path.join(homes, 'alice')]);
  const dir = tmpDir('sg-img-hub');
  fs.chmodSync(dir, 0o755);

  // The shared engine's socket is root's only (0600); a deployment gives the service access to its
  // engine's socket (the docker group); here a relay socket the container's user may open stands in.
  const relayPath = path.join(dir, 'engine.sock');
  const relay = net.createServer((client) => {
    const upstream = net.connect(sock);
    client.pipe(upstream).pipe(client);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
  });

  let pg: TestPostgres;
  let ports: number[];
  let hubUrl = '';
  const hubApi = async <T>(method: string, p: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${hubUrl}/hub/api${p}`, { method, headers: { Authorization: `token ${serviceToken}` }, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
  };
  const containers = async () => docker.listContainers({ all: true, filters: { label: [`${prefix}.managed=true`] } });
  const running = (name: string) => {
    const state = JSON.parse(podman(sock, 'inspect', '--format', '{{json .State}}', name)) as { Running: boolean };
    if (!state.Running) throw new Error(`${name} exited: ${containerLogs(sock, name).slice(-4000)}`);
  };

  beforeAll(async () => {
    await new Promise<void>((resolve) => relay.listen(relayPath, resolve));
    fs.chmodSync(relayPath, 0o666);
    pg = await createTestPostgres();
    ports = await freePorts(4);
    const [sgPort, hubPort, hubApiPort, proxyApiPort] = ports as [number, number, number, number];
    hubUrl = `http://127.0.0.1:${hubPort}`;

    fs.writeFileSync(
      path.join(dir, 'spawngate.yaml'),
      [
        'profiles:',
        '  - slug: container',
        '    display_name: Container',
        '    default: true',
        `    image: ${TEST_IMAGE}`,
        '    resources: {cpu_request: 0.5, cpu_limit: 1, memory_request_mib: 256, memory_limit_mib: 768}',
        'kernels:',
        `  image: ${TEST_IMAGE}`,
        `  launcher: ${JSON.stringify(TEST_LAUNCHER)}`,
        'docker:',
        `  extra_binds: ${JSON.stringify([...HOST_BINDS, SHIM_BIND])}`,
        `  label_prefix: ${prefix}`,
      ].join('\n'),
    );
    const readOnly = ['--network', 'host', '--read-only', '--cap-drop', 'ALL', '--security-opt', 'no-new-privileges'];
    podman(
      sock, 'run', '-d', '--name', names.sg, ...readOnly,
      '--tmpfs', '/var/lib/spawngate:rw,U,mode=0700',
      '-v', `${relayPath}:/var/run/docker.sock`,
      '-v', `${path.join(dir, 'spawngate.yaml')}:/etc/spawngate/spawngate.yaml:ro`,
      '-v', `${homes}:${homes}:ro`,
      ...[
        'SPAWNGATE_BACKEND=docker',
        'DOCKER_HOST=unix:///var/run/docker.sock',
        'SPAWNGATE_CONFIG=/etc/spawngate/spawngate.yaml',
        `SPAWNGATE_DATABASE_URL=${pg.url}`,
        'SPAWNGATE_REDIS_URL=redis://127.0.0.1:6379',
        `SPAWNGATE_QUEUE_PREFIX=sg-img-hub-${run}`,
        `SPAWNGATE_HOME_ROOT=${homes}`,
        `SPAWNGATE_PORT=${sgPort}`,
        `SPAWNGATE_PUBLIC_URL=http://${hostIp}:${sgPort}`,
        `SPAWNGATE_HUB_TOKEN=${hubToken}`,
        `SPAWNGATE_SECRET_KEY=${randomBytes(32).toString('base64')}`,
      ].flatMap((e) => ['--env', e]),
      images.spawngate,
    );
    await waitFor('spawngate container ready', async () => {
      running(names.sg);
      return (await fetch(`http://127.0.0.1:${sgPort}/readyz`).catch(() => undefined))?.status === 200;
    }, 120_000, 200);
    // the spawngate container migrated the database on start
    await pg.db.query(`
      INSERT INTO users (username) VALUES ('alice');
      INSERT INTO experiments (name, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib) VALUES ('climate', 0.25, 0.5, 128, 512);
      INSERT INTO experiment_members (experiment_id, user_id) SELECT e.id, u.id FROM experiments e, users u WHERE e.name = 'climate' AND u.username = 'alice';
    `);

    // z2jh mounts its config at this path; the hub writes only its state dir (an emptyDir) and /tmp.
    fs.writeFileSync(
      path.join(dir, 'jupyterhub_config.py'),
      `
c = get_config()  # noqa
c.JupyterHub.ip = '127.0.0.1'
c.JupyterHub.port = ${hubPort}
c.JupyterHub.hub_ip = '0.0.0.0'
c.JupyterHub.hub_port = ${hubApiPort}
c.JupyterHub.hub_connect_ip = '${hostIp}'
c.ConfigurableHTTPProxy.api_url = 'http://127.0.0.1:${proxyApiPort}'
c.JupyterHub.db_url = 'sqlite:////srv/jupyterhub/jupyterhub.sqlite'
c.JupyterHub.cookie_secret_file = '/srv/jupyterhub/cookie_secret'
c.ConfigurableHTTPProxy.pid_file = '/srv/jupyterhub/proxy.pid'
c.JupyterHub.authenticator_class = 'dummy'
c.JupyterHub.spawner_class = 'spawngate'
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 60
c.Spawner.poll_interval = 2
c.JupyterHub.services = [{'name': 'images-test', 'api_token': '${serviceToken}'}]
c.JupyterHub.load_roles = [{'name': 'images-test', 'scopes': ['admin:users', 'admin:servers', 'access:servers', 'read:users', 'read:servers'], 'services': ['images-test']}]
c.RemoteSpawner.service_url = 'http://127.0.0.1:${sgPort}'
`,
    );
    podman(
      sock, 'run', '-d', '--name', names.hub, ...readOnly,
      '--tmpfs', '/srv/jupyterhub:rw,U,mode=0700',
      '-v', `${path.join(dir, 'jupyterhub_config.py')}:/usr/local/etc/jupyterhub/jupyterhub_config.py:ro`,
      '--env', `SPAWNGATE_HUB_TOKEN=${hubToken}`,
      images.hub,
      'jupyterhub', '--config', '/usr/local/etc/jupyterhub/jupyterhub_config.py',
    );
    await waitFor('JupyterHub API in the hub container', async () => {
      running(names.hub);
      return (await fetch(`${hubUrl}/hub/api`).catch(() => undefined))?.ok;
    }, 180_000, 250);
  });

  afterAll(async () => {
    await hubApi('DELETE', '/users/alice/server').catch(() => undefined);
    for (const n of [names.hub, names.sg]) {
      try {
        podman(sock, 'rm', '--force', '--time', '10', n);
      } catch {
        // never started
      }
    }
    await Promise.all((await containers()).map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
    await pg?.drop();
    await new Promise((r) => relay.close(r));
    fs.rmSync(homes, { recursive: true, force: true });
  });

  test('the hub runs as uid 1000 with RemoteSpawner from the image', () => {
    expect(podman(sock, 'exec', names.hub, 'id', '-u').trim()).toBe('1000');
    const out = podman(sock, 'exec', names.hub, 'python3', '-c', 'import spawngate, jupyterhub; print(spawngate.__version__, jupyterhub.__version__)');
    expect(out.trim()).toMatch(/^0\.1\.0 3\./);
    expect(containerLogs(sock, names.hub)).toMatch(/Using Spawner: spawngate\.spawner\.RemoteSpawner/);
  });

  test("the hub image spawns alice's server through the spawngate container, reaches it, and stops it", async () => {
    expect((await hubApi('POST', '/users/alice')).status).toBeLessThan(300);
    const spawn = await hubApi('POST', '/users/alice/server');
    if (spawn.status >= 300) throw new Error(`spawn: ${spawn.status} ${JSON.stringify(spawn.body)}\nhub:\n${containerLogs(sock, names.hub).slice(-3000)}\nspawngate:\n${containerLogs(sock, names.sg).slice(-3000)}`);
    await waitFor('alice ready', async () => {
      running(names.hub);
      return (await hubApi<HubUser>('GET', '/users/alice')).body.servers?.['']?.ready;
    }, 180_000, 500);
    const servers = (await containers()).filter((c) => c.Labels[`${prefix}.kind`] === 'server');
    expect(servers).toHaveLength(1);
    const info = await docker.getContainer(servers[0]!.Id).inspect();
    expect(info.Config.User).toBe(`${TEST_UID}:${TEST_UID}`);
    expect(info.HostConfig.Memory).toBe(768 * 1048576);
    const status = await fetch(`${hubUrl}/user/alice/api/status`, { headers: { Authorization: `token ${serviceToken}` } });
    expect(status.status).toBe(200);
    // the spawngate container's log shows the start it ran
    expect(containerLogs(sock, names.sg)).toMatch(/alice/);

    await hubApi('DELETE', '/users/alice/server');
    await waitFor('alice stopped', async () => !(await hubApi<HubUser>('GET', '/users/alice')).body.servers?.[''], 60_000, 500);
    await waitFor('server container removed', async () => (await containers()).length === 0, 30_000);
  });
}
