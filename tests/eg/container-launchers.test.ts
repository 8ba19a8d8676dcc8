/**
 * Enterprise Gateway launchers in containers, for real: tests/eg/eg_launcher.py (written from EG's
 * protocol) is the container's own command, as EG's kernel images run theirs. On the docker backend
 * (podman's Docker API) it reports to the gateway of the user's network and is reached at its
 * container's address; through the Kubernetes stand-in (pods are local processes with addresses of
 * their own in 127/8) it reports to `kernels.response_address` and is reached at its pod IP, and
 * interrupts reach it through its communication port (the API has no signal verb).
 *
 * Both: the kernel runs as the home's owner with the experiment's limits; a payload from another
 * address than the kernel's own workload is dropped (the threat: a user's other container, or a
 * colleague's, answering first and pointing spawngate at a kernel of theirs); a version-0 payload
 * from a container fails the launch at once, saying why.
 */
import { constants, createCipheriv, createPublicKey, publicEncrypt, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import request from 'supertest';
import YAML from 'yaml';
import { createDockerBackend } from '../../src/backends/docker';
import { loadConfig } from '../../src/config';
import { mintToken } from '../../src/db';
import { createService, type Service } from '../../src/compose';
import { createTestPostgres, type TestPostgres } from '../db/helpers';
import { connectWs, execute } from '../support/jupyter-ws';
import { testLogger } from '../support/logger';
import { HOST_BINDS, TEST_IMAGE, TEST_UID, prepareEngine, skipLoudly } from '../support/podman';

jest.setTimeout(180_000);

const DOCKER_PROXY = 'enterprise_gateway.services.processproxies.docker_swarm.DockerProcessProxy';
/** Stands in for an EG kernel image's launcher directory (bind-mounted into containers), readable by the kernels' uid. */
function launcherDir(root: string): string {
  const dir = path.join(root, 'eg-image');
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  fs.copyFileSync(path.join(__dirname, 'eg_launcher.py'), path.join(dir, 'eg_launcher.py'));
  fs.chmodSync(dir, 0o755);
  fs.chmodSync(path.join(dir, 'eg_launcher.py'), 0o644);
  return dir;
}

/** EG's container argv: no connection file, no resource dir (the launcher is in the image). */
const egArgv = (dir: string): string[] => ['/usr/bin/python3', path.join(dir, 'eg_launcher.py'), '--kernel-id', '{kernel_id}', '--port-range', '{port_range}', '--response-address', '{response_address}', '--public-key', '{public_key}'];

function kernelspec(home: string, name: string, spec: object): void {
  const dir = path.join(home, '.local', 'share', 'jupyter', 'kernels', name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'kernel.json'), JSON.stringify({ display_name: name, language: 'python', ...spec }));
}

/** A version-1 payload for `kernelId` as anyone who read the public key could make it. */
function forged(publicKey: string, kernelId: string): string {
  const aes = randomBytes(16);
  const c = createCipheriv('aes-128-ecb', aes, null);
  const info = { kernel_id: kernelId, ip: '127.0.0.1', key: 'impostor', shell_port: 1, iopub_port: 2, stdin_port: 3, control_port: 4, hb_port: 5, comm_port: 6 };
  const connInfo = Buffer.concat([c.update(JSON.stringify(info)), c.final()]).toString('base64');
  const pub = createPublicKey({ key: Buffer.from(publicKey, 'base64'), format: 'der', type: 'spki' });
  const key = publicEncrypt({ key: pub, padding: constants.RSA_PKCS1_PADDING }, aes).toString('base64');
  return Buffer.from(JSON.stringify({ version: 1, key, conn_info: connInfo })).toString('base64');
}

const SQL = (user: string) => `
  INSERT INTO users (username) VALUES ('${user}');
  INSERT INTO experiments (name, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib) VALUES ('eg-box', 0.25, 0.5, 128, 384);
  INSERT INTO environments (name, experiment_id) SELECT 'eg-env', id FROM experiments WHERE name = 'eg-box';
  INSERT INTO experiment_members (experiment_id, user_id) SELECT e.id, u.id FROM experiments e, users u WHERE e.name = 'eg-box' AND u.username = '${user}';
`;

const engine = prepareEngine();

describe('docker backend (podman)', () => {
  if (engine.unavailable) {
    skipLoudly('EG launchers on the docker backend', engine.unavailable);
    return;
  }
  const socketPath = engine.socketPath!;
  const docker = new Docker({ socketPath });
  const run = Math.random().toString(16).slice(2, 8);
  const prefix = `sgeg-${run}`;
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-eg-docker-'));
  fs.chmodSync(root, 0o755);
  const homes = path.join(root, 'homes');
  const home = path.join(homes, 'dora');
  const image = launcherDir(root);
  const meta = { process_proxy: { class_name: DOCKER_PROXY, config: { image_name: TEST_IMAGE, port_range: '40000..40999' } }, spawngate: { environment: 'eg-env' } };
  kernelspec(home, 'eg_docker', { argv: egArgv(image), metadata: meta });
  kernelspec(home, 'eg_docker_slow', { argv: egArgv(image), env: { SG_TEST_REPORT_DELAY: '4' }, metadata: meta });
  kernelspec(home, 'eg_docker_v0', { argv: egArgv(image), env: { SG_TEST_PAYLOAD_VERSION: '0' }, metadata: meta });
  fs.chmodSync(homes, 0o755);
  for (const p of fs.readdirSync(home, { recursive: true }) as string[]) fs.chownSync(path.join(home, p), TEST_UID, TEST_UID);
  fs.chownSync(home, TEST_UID, TEST_UID);
  fs.writeFileSync(
    path.join(root, 'config.yaml'),
    YAML.stringify({
      kernels: { allowed_images: [TEST_IMAGE] },
      docker: { extra_binds: [...HOST_BINDS, `${image}:${image}:ro`], label_prefix: prefix },
    }),
  );

  let pg: TestPostgres;
  let service: Service;
  let token: string;
  let port: number;
  const ours = async (kernelId?: string) =>
    (await docker.listContainers({ all: true, filters: { label: [`${prefix}.managed=true`] } })).filter((c) => kernelId === undefined || c.Labels.kernel_id === kernelId);

  const dockerHost = process.env.DOCKER_HOST;
  beforeAll(async () => {
    process.env.DOCKER_HOST = `unix://${socketPath}`; // read by dockerode, as by every Docker client
    pg = await createTestPostgres();
    service = await createService(
      loadConfig({
        SPAWNGATE_DATA_DIR: path.join(root, 'data'),
        SPAWNGATE_DATABASE_URL: pg.url,
        SPAWNGATE_BACKEND: 'docker',
        SPAWNGATE_HOME_ROOT: homes,
        SPAWNGATE_CONFIG: path.join(root, 'config.yaml'),
        SPAWNGATE_PORT: '0',
      }),
    );
    port = await service.listen();
    await service.db.query(SQL('dora'));
    token = await mintToken(service.db, { username: 'dora', kind: 'cli' });
  });

  afterAll(async () => {
    for (const k of (await service?.kernels.list(undefined)) ?? []) await service.kernels.shutdown(undefined, k.id).catch(() => undefined);
    await service?.close();
    await pg?.drop();
    await Promise.all((await ours()).map((c) => docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined)));
    const networks = (await docker.listNetworks({ filters: { label: [`${prefix}.managed=true`] } })) as { Name: string }[];
    await Promise.all(networks.map((n) => docker.getNetwork(n.Name).remove().catch(() => undefined)));
    fs.rmSync(root, { recursive: true, force: true });
    if (dockerHost === undefined) delete process.env.DOCKER_HOST;
    else process.env.DOCKER_HOST = dockerHost;
  });

  const as = () => ({ Authorization: `token ${token}` });
  const launch = (name: string) => request(service.app!).post('/api/kernels').set(as()).send({ name });

  test('the launcher reports from its container; the kernel runs as the home owner with the limits; interrupt, restart and shutdown go through its communication port', async () => {
    const res = await launch('eg_docker');
    expect(res.status).toBe(201);
    const id = res.body.id as string;
    const [c] = await ours(id);
    const info = await docker.getContainer(c!.Id).inspect();
    expect(info.Config.User).toBe(`${TEST_UID}:${TEST_UID}`);
    expect(info.HostConfig.Memory).toBe(384 * 1048576);
    expect(info.HostConfig.NanoCpus).toBe(0.5e9);
    expect(info.Config.Cmd).toEqual(expect.arrayContaining(['--kernel-id', id, '--port-range', '40000..40999']));
    const env = Object.fromEntries(info.Config.Env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
    expect(env.SPAWNGATE_CONNECTION_INFO).toBeUndefined();
    const networks = info.NetworkSettings.Networks as Record<string, { IPAddress: string; Gateway: string }>;
    const [net] = Object.values(networks);
    // It reported to its own network's gateway (this host), and is reached at its own address.
    expect(env.RESPONSE_ADDRESS).toMatch(new RegExp(`^${net!.Gateway.replaceAll('.', '\\.')}:\\d+$`));
    const row = (await service.db.query<{ host: string; backend_ref: Record<string, unknown> }>('SELECT host, backend_ref FROM kernels WHERE id = $1', [id]))[0]!;
    expect(row.host).toBe(net!.IPAddress);
    expect(row.backend_ref.launcher_comm).toEqual({ host: net!.IPAddress, port: expect.any(Number) });

    const ws = await connectWs(`ws://127.0.0.1:${port}/api/kernels/${id}/channels`, as());
    expect((await execute(ws, 'import os; print(os.getuid(), os.getgid())')).stdout.trim()).toBe(`${TEST_UID} ${TEST_UID}`);
    const sleeping = execute(ws, 'import time; time.sleep(60)', 40_000);
    await new Promise((r) => setTimeout(r, 1000));
    expect((await request(service.app!).post(`/api/kernels/${id}/interrupt`).set(as())).status).toBe(204);
    expect((await sleeping).reply.content.ename).toBe('KeyboardInterrupt');
    expect((await execute(ws, "import sys; print(sys.modules['sg_eg_launcher_log'].requests)")).stdout.trim()).toBe("[{'signum': 2}]");
    ws.close();

    // A restart: a new container, a new handshake, reached at its new address.
    expect((await request(service.app!).post(`/api/kernels/${id}/restart`).set(as())).status).toBe(200);
    const [c2] = await ours(id);
    expect(c2!.Id).not.toBe(c!.Id);
    const again = await connectWs(`ws://127.0.0.1:${port}/api/kernels/${id}/channels`, as());
    expect((await execute(again, "import sys; print(sys.modules['sg_eg_launcher_log'].requests)")).stdout.trim()).toBe('[]');
    again.close();
    expect((await request(service.app!).delete(`/api/kernels/${id}`).set(as())).status).toBe(204);
    expect(await ours(id)).toEqual([]);
  });

  test("a payload from another container is dropped; the kernel's own report wins", async () => {
    // Sent now, over the service's own port; its launcher waits 4 s before reporting.
    const pending = fetch(`http://127.0.0.1:${port}/api/kernels`, { method: 'POST', headers: { ...as(), 'Content-Type': 'application/json' }, body: JSON.stringify({ name: 'eg_docker_slow' }) }).then(async (r) => ({ status: r.status, body: (await r.json()) as { id: string } }));
    let c: Docker.ContainerInfo | undefined;
    for (let i = 0; i < 100 && !c; i++) {
      [c] = (await ours()).filter((x) => x.State === 'running');
      if (!c) await new Promise((r) => setTimeout(r, 100));
    }
    const env = Object.fromEntries((await docker.getContainer(c!.Id).inspect()).Config.Env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
    const [rhost, rport] = env.RESPONSE_ADDRESS!.split(':');
    // A container on another network (another user's, or one of the user's own outside spawngate)
    // knows the public key and the kernel id and answers first.
    const code = `import socket; s = socket.create_connection((${JSON.stringify(rhost)}, ${rport})); s.sendall(${JSON.stringify(forged(env.PUBLIC_KEY!, env.KERNEL_ID!))}.encode()); s.close(); print("sent")`;
    const impostor = await docker.createContainer({
      name: `${prefix}-impostor`,
      Image: TEST_IMAGE,
      Cmd: ['/usr/bin/python3', '-c', code],
      User: `${TEST_UID}:${TEST_UID}`,
      Labels: { [`${prefix}.managed`]: 'true' },
      HostConfig: { Binds: HOST_BINDS },
    });
    await impostor.start();
    expect((await impostor.wait()).StatusCode).toBe(0);
    const res = await pending;
    expect(res.status).toBe(201);
    const row = (await service.db.query<{ backend_ref: Record<string, unknown> }>('SELECT backend_ref FROM kernels WHERE id = $1', [res.body.id]))[0]!;
    expect((row.backend_ref.reached_ports as { shell_port: number }).shell_port).toBeGreaterThanOrEqual(40000);
    const ws = await connectWs(`ws://127.0.0.1:${port}/api/kernels/${res.body.id}/channels`, as());
    expect((await execute(ws, 'print(6 * 7)')).stdout.trim()).toBe('42');
    ws.close();
    await impostor.remove({ force: true });
    expect((await request(service.app!).delete(`/api/kernels/${res.body.id}`).set(as())).status).toBe(204);
  });

  test("the backend's response host: the gateway of the user's network, or spawngate's own container there when it is attached", async () => {
    const networkOf = async (user: string): Promise<{ Name: string; Gateway: string }> => {
      const all = (await docker.listNetworks({ filters: { label: [`${prefix}.managed=true`, `${prefix}.user=${user}`] } })) as { Name: string; IPAM: { Config: { Gateway: string }[] } }[];
      expect(all).toHaveLength(1);
      return { Name: all[0]!.Name, Gateway: all[0]!.IPAM.Config[0]!.Gateway };
    };
    const onHost = createDockerBackend({ connection: { socketPath }, labelPrefix: prefix, logger: testLogger });
    expect(await onHost.hostAddressFor!('eg-host-a')).toBe((await networkOf('eg-host-a')).Gateway);
    await onHost.close();

    // spawngate in a container (here a stand-in that sleeps), attached to every user's network.
    const self = await docker.createContainer({ name: `${prefix}-self`, Image: TEST_IMAGE, Cmd: ['/bin/sleep', '300'], Labels: { [`${prefix}.managed`]: 'true' }, HostConfig: { Binds: HOST_BINDS } });
    await self.start();
    const attached = createDockerBackend({ connection: { socketPath }, labelPrefix: prefix, attachContainers: [`${prefix}-self`], logger: testLogger });
    const address = await attached.hostAddressFor!('eg-host-b');
    const net = await networkOf('eg-host-b');
    const own = ((await self.inspect()).NetworkSettings.Networks as Record<string, { IPAddress: string }>)[net.Name]!.IPAddress;
    expect(address).toBe(own);
    expect(address).not.toBe(net.Gateway);
    await attached.close();
    await self.remove({ force: true });
  });

  test('a version-0 payload from a container fails the launch at once, saying why', async () => {
    const t0 = Date.now();
    const res = await launch('eg_docker_v0');
    expect(res.status).toBe(500);
    expect(res.body.message).toContain('version-0');
    expect(res.body.message).toContain('Enterprise Gateway 2.0 or later');
    expect(Date.now() - t0).toBeLessThan(30_000); // not the launch timeout
  });
});
