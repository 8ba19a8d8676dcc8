/**
 * End to end: Debian's JupyterHub 3.0 spawns alice's single-user server through spawngate into a
 * podman container (docker backend), reaches it through its proxy at the published host port, and
 * the server's notebook API starts a kernel through spawngate's gateway in a second container.
 *
 * Containers reach the hub and spawngate at an address of this machine (not 127.0.0.1, which inside a
 * container is the container itself): the hub and spawngate listen on 0.0.0.0 and name that address.
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import Docker from 'dockerode';
import { createTestPostgres, type TestPostgres } from '../db/helpers';
import { connectWs, execute } from '../support/jupyter-ws';
import { HOST_BINDS, SHIM_BIND, TEST_IMAGE, TEST_LAUNCHER, TEST_UID, hostAddress, podman, prepareEngine, skipLoudly } from '../support/podman';
import { freePort, startHub, startSpawngate, tmpDir, waitFor, type Hub, type Spawngate } from './harness';

jest.setTimeout(180_000);

const engine = prepareEngine();

interface HubUser {
  servers: Record<string, { ready: boolean; url: string }>;
}

if (engine.unavailable) {
  skipLoudly('docker hub spawn end to end', engine.unavailable);
} else {
  const socketPath = engine.socketPath!;
  const docker = new Docker({ socketPath });
  const run = Math.random().toString(16).slice(2, 8);
  const prefix = `sgtest-${run}`;
  const hostIp = hostAddress();

  const homes = tmpDir('sg-docker-hub-homes');
  const kdir = path.join(homes, 'alice', '.conda', 'envs', 'analysis', 'share', 'jupyter', 'kernels', 'python3');
  fs.mkdirSync(kdir, { recursive: true });
  fs.writeFileSync(
    path.join(kdir, 'kernel.json'),
    JSON.stringify({ argv: ['/usr/bin/python3', '-m', 'ipykernel_launcher', '-f', '{connection_file}'], display_name: 'Analysis', language: 'python' }),
  );
  execFileSync('chown', ['-R', `${TEST_UID}:${TEST_UID}`, path.join(homes, 'alice')]);

  const configFile = path.join(tmpDir('sg-docker-hub-config'), 'spawngate.yaml');
  fs.writeFileSync(
    configFile,
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

  let pg: TestPostgres;
  let sg: Spawngate;
  let hub: Hub;

  const containers = async (component?: string) =>
    (await docker.listContainers({ all: true, filters: { label: [`${prefix}.managed=true`] } })).filter(
      (c) => component === undefined || c.Labels[`${prefix}.kind`] === component,
    );
  const sgServer = async () => {
    const res = await fetch(`${sg.url}/api/users/alice/server`, { headers: { Authorization: `token ${sg.hubToken}` } });
    return (await res.json()) as { state: string; message?: string | null; url?: string | null };
  };
  const waitReady = () =>
    waitFor('alice ready', async () => (await hub.api<HubUser>('GET', '/users/alice')).body.servers?.['']?.ready, 90_000, 200);

  beforeAll(async () => {
    pg = await createTestPostgres();
    const port = await freePort();
    sg = await startSpawngate({
      port,
      env: {
        SPAWNGATE_BACKEND: 'docker',
        DOCKER_HOST: `unix://${socketPath}`,
        SPAWNGATE_CONFIG: configFile,
        SPAWNGATE_DATABASE_URL: pg.url,
        SPAWNGATE_HOME_ROOT: homes,
        SPAWNGATE_BIND: '0.0.0.0',
        SPAWNGATE_PUBLIC_URL: `http://${hostIp}:${port}`,
      },
    });
    await pg.db.query(`
      INSERT INTO users (username) VALUES ('alice');
      INSERT INTO experiments (name, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib) VALUES ('climate', 0.25, 0.5, 128, 512);
      INSERT INTO environments (name, experiment_id) SELECT 'analysis', id FROM experiments WHERE name = 'climate';
      INSERT INTO experiment_members (experiment_id, user_id) SELECT e.id, u.id FROM experiments e, users u WHERE e.name = 'climate' AND u.username = 'alice';
    `);
    hub = await startHub({
      spawngateUrl: sg.url,
      hubToken: sg.hubToken,
      extraConfig: [`c.JupyterHub.hub_ip = '0.0.0.0'`, `c.JupyterHub.hub_connect_ip = '${hostIp}'`, 'c.Spawner.poll_interval = 2'].join('\n'),
    });
  });

  afterAll(async () => {
    await hub?.api('DELETE', '/users/alice/server');
    await hub?.stop();
    await sg?.stop();
    await pg?.drop();
    await Promise.all((await containers()).map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
  });

  test('the hub spawns a server in a container, reaches it through its proxy, and stops it', async () => {
    await hub.api('POST', '/users/alice');
    expect((await hub.api('POST', '/users/alice/server')).status).toBeLessThan(300);
    await waitReady();
    const [server] = await containers('server');
    expect(server).toBeDefined();
    const info = await docker.getContainer(server!.Id).inspect();
    expect(info.Config.User).toBe(`${TEST_UID}:${TEST_UID}`);
    expect(info.HostConfig.NanoCpus).toBe(1_000_000_000);
    expect(info.HostConfig.Memory).toBe(768 * 1048576);
    expect(info.HostConfig.MemoryReservation).toBe(256 * 1048576);
    expect(info.Config.Env).toContain(`JUPYTER_GATEWAY_URL=${sg.env.SPAWNGATE_PUBLIC_URL}`);
    // The hub was given the published host port, not the container's 8888.
    const published = Number(info.NetworkSettings.Ports['8888/tcp']?.[0]?.HostPort);
    expect((await sgServer()).url).toBe(`http://127.0.0.1:${published}`);

    const status = await fetch(`${hub.url}/user/alice/api/status`, { headers: { Authorization: `token ${hub.token}` } });
    expect(status.status).toBe(200);

    await hub.api('DELETE', '/users/alice/server');
    await waitFor('alice stopped', async () => !(await hub.api<HubUser>('GET', '/users/alice')).body.servers?.[''], 30_000);
    await waitFor('server container removed', async () => (await containers('server')).length === 0, 20_000);
    expect((await sgServer()).state).toBe('stopped');
  });

  test("the containerized server's notebook API runs a kernel in a container through the gateway", async () => {
    await hub.api('POST', '/users/alice/server');
    await waitReady();
    const headers = { Authorization: `token ${hub.token}`, 'Content-Type': 'application/json' };
    const res = await fetch(`${hub.url}/user/alice/api/kernels`, { method: 'POST', headers, body: JSON.stringify({ name: 'conda-env-analysis-python3' }) });
    expect(res.status).toBe(201);
    const kernel = (await res.json()) as { id: string };
    expect((await containers('kernel')).map((c) => c.Labels.kernel_id)).toEqual([kernel.id]);
    const ws = await connectWs(`${hub.url.replace('http', 'ws')}/user/alice/api/kernels/${kernel.id}/channels`, { Authorization: `token ${hub.token}` });
    try {
      const out = await execute(ws, "import os; print(os.getuid(), os.environ['KERNEL_CPUS_LIMIT'], os.environ['KERNEL_USERNAME'])");
      expect(out.stdout.trim()).toBe(`${TEST_UID} 0.5 alice`);
    } finally {
      ws.close();
    }
    expect((await fetch(`${hub.url}/user/alice/api/kernels/${kernel.id}`, { method: 'DELETE', headers })).status).toBe(204);
    await waitFor('kernel container removed', async () => (await containers('kernel')).length === 0, 20_000);
  });

  test('a server container killed from outside is reported stopped to the hub, with the reason', async () => {
    await waitReady();
    const [server] = await containers('server');
    podman(socketPath, 'kill', '--signal', 'KILL', server!.Id);
    await waitFor('spawngate records the exit', async () => (await sgServer()).state === 'failed', 20_000);
    expect((await sgServer()).message).toMatch(/^server exited with status 137 \(SIGKILL/);
    // The hub's poll (every 2 s here) sees the exit and forgets the server.
    await waitFor('the hub sees it stopped', async () => !(await hub.api<HubUser>('GET', '/users/alice')).body.servers?.[''], 30_000);
    expect(await containers('server')).toHaveLength(0);
  });

  test('reconcile at start-up: a server gone while spawngate was down is closed, an orphan container removed', async () => {
    await hub.api('POST', '/users/alice/server');
    await waitReady();
    const [server] = await containers('server');
    sg.child.kill('SIGKILL');
    await sg.exited;
    podman(socketPath, 'rm', '-f', server!.Id);
    // A kernel container nobody records (its launch was never written down, or its record was deleted).
    const orphan = `sg-krn-00000000-0000-4000-8000-${run.padStart(12, '0')}`;
    podman(socketPath, 'run', '-d', '--name', orphan, '--label', `${prefix}.managed=true`, '--label', `${prefix}.name=${orphan}`, '--label', `${prefix}.kind=kernel`, TEST_IMAGE, 'sleep', '600');
    sg = await startSpawngate({ port: sg.port, dataDir: sg.dataDir, env: sg.env });
    expect(await sgServer()).toMatchObject({ state: 'failed', message: 'server disappeared while spawngate was down' });
    expect((await containers()).map((c) => c.Names[0])).not.toContain(`/${orphan}`);
    await waitFor('the hub sees it stopped', async () => !(await hub.api<HubUser>('GET', '/users/alice')).body.servers?.[''], 30_000);
  });
}
