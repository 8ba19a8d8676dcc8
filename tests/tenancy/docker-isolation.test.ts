/**
 * Kernel traffic on the docker backend (issue 11), on real podman: each user's containers join a
 * network of their own, so alice's container cannot open a TCP connection to bob's kernel container —
 * neither at its address on bob's network nor through the host gateway to bob's published port (bound
 * to 127.0.0.1) — while spawngate, on the host, reaches it. Both ways of reaching workloads are
 * covered: published ports (the default) and a configured network (reached at the container address).
 */
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { createDockerBackend, type DockerBackend, type DockerBackendOptions } from '../../src/backends/docker';
import type { WorkloadSpec } from '../../src/backends/types';
import { readLine, waitFor } from '../backends/contract';
import { HOST_BINDS, TEST_IMAGE, TEST_UID, podman, prepareEngine, skipLoudly } from '../support/podman';

const PY = '/usr/bin/python3';
const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined } as unknown as DockerBackendOptions['logger'];

/** Bob's kernel stand-in: answers one line on a port. */
const LISTEN = 'import socket, sys\ns = socket.socket(); s.bind(("", int(sys.argv[1]))); s.listen()\nprint("ready", flush=True)\nwhile True:\n    c, _ = s.accept(); c.sendall(b"bob-kernel\\n"); c.close()';

/** Alice's probe: tries each host:port given, through its own gateway when host is "gateway", prints JSON. */
const PROBE = `
import json, socket, struct, sys
def gateway():
    for line in open("/proc/net/route").read().splitlines()[1:]:
        f = line.split()
        if f[1] == "00000000":
            return socket.inet_ntoa(struct.pack("<L", int(f[2], 16)))
out = {"gateway": gateway()}
for target in sys.argv[1:]:
    host, port = target.rsplit(":", 1)
    host = out["gateway"] if host == "gateway" else host
    s = socket.socket(); s.settimeout(3)
    try:
        s.connect((host, int(port))); out[target] = "connected:" + s.recv(20).decode().strip()
    except Exception as e:
        out[target] = type(e).__name__
    finally:
        s.close()
print(json.dumps(out), flush=True)
`;

const engine = prepareEngine();

if (engine.unavailable) {
  skipLoudly('docker isolation tests', engine.unavailable);
} else {
  const docker = new Docker({ socketPath: engine.socketPath! });
  const run = randomBytes(3).toString('hex');
  let n = 0;
  const created: { backend: DockerBackend; name: string }[] = [];
  const networksBefore = new Set<string>();

  const spec = (user: string, extra: Partial<WorkloadSpec>): WorkloadSpec => ({
    name: `sg-iso-${run}-${++n}`,
    kind: 'kernel',
    labels: { 'spawngate/user': user },
    image: TEST_IMAGE,
    command: [PY, '-c', LISTEN],
    env: { KERNEL_USERNAME: user },
    ...extra,
  });

  const networkOf = async (name: string): Promise<{ network: string; ip: string }> => {
    const info = await docker.getContainer(name).inspect();
    const [network, settings] = Object.entries(info.NetworkSettings.Networks as Record<string, { IPAddress: string }>)[0]!;
    return { network, ip: settings.IPAddress };
  };

  /** Starts bob's listener and alice's probe against `targets(bob)`; returns bob's state and the probe's findings. */
  const probe = async (backend: DockerBackend, targets: (bob: { hostPort: number; direct: string }) => string[]) => {
    const bob = spec(`bob${run}`, { ports: { default: 0 } });
    bob.command = [...bob.command, '{port}'];
    await backend.ensure(bob);
    created.push({ backend, name: bob.name });
    await waitFor(() => backend.logs(bob.name, 5), (l) => l.includes('ready'), 20_000);
    const state = await backend.state(bob.name);
    const { ip } = await networkOf(bob.name);
    const bobPort = (JSON.parse(state.labels![`sgiso${run}.ports`]!) as { default: number }).default;
    const alice = spec(`alice${run}`, { command: [PY, '-c', PROBE, ...targets({ hostPort: state.ports!.default!, direct: `${ip}:${bobPort}` })] });
    await backend.ensure(alice);
    created.push({ backend, name: alice.name });
    const lines = await waitFor(() => backend.logs(alice.name, 5), (l) => l.some((x) => x.startsWith('{')), 30_000);
    return { state, bobIp: ip, bobPort, alice: alice.name, bob: bob.name, found: JSON.parse(lines.find((x) => x.startsWith('{'))!) as Record<string, string> };
  };

  beforeAll(async () => {
    for (const net of await docker.listNetworks()) networksBefore.add(net.Name);
  });
  afterAll(async () => {
    await Promise.all(created.map((c) => c.backend.stop(c.name, { graceSeconds: 0 }).catch(() => undefined)));
    for (const net of await docker.listNetworks()) {
      if (!networksBefore.has(net.Name) && net.Name.includes(run)) await docker.getNetwork(net.Name).remove().catch(() => undefined);
    }
  });

  const options = (extra: Partial<DockerBackendOptions> = {}): DockerBackendOptions => ({
    connection: { socketPath: engine.socketPath! },
    runAsUser: TEST_UID,
    extraBinds: HOST_BINDS,
    labelPrefix: `sgiso${run}`,
    logger: silent,
    ...extra,
  });

  test("published ports: alice's container reaches neither bob's container nor his published port via the host gateway; spawngate does", async () => {
    const backend = createDockerBackend(options());
    try {
      const r = await probe(backend, (bob) => [bob.direct, `gateway:${bob.hostPort}`]);
      // Each user has a network of their own, named after the user.
      const [aliceNet, bobNet] = [await networkOf(r.alice), await networkOf(r.bob)];
      expect(aliceNet.network).toMatch(new RegExp(`^sgiso${run}-alice${run}-[0-9a-f]{8}$`));
      expect(bobNet.network).toMatch(new RegExp(`^sgiso${run}-bob${run}-[0-9a-f]{8}$`));
      expect(r.state.host).toBe('127.0.0.1');
      expect(r.found.gateway).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      expect(r.found[`${r.bobIp}:${r.bobPort}`]).not.toMatch(/^connected/);
      expect(r.found[`gateway:${r.state.ports!.default}`]).not.toMatch(/^connected/);
      // spawngate, on the host, reaches bob's kernel where the backend says it is.
      expect(await readLine(r.state.host!, r.state.ports!.default!)).toBe('bob-kernel');
    } finally {
      await backend.close({ stopAll: true });
    }
  }, 120_000);

  test("configured network: alice's container cannot connect to bob's kernel at its address; spawngate can", async () => {
    const backend = createDockerBackend(options({ network: `sgiso${run}net` }));
    try {
      const r = await probe(backend, (bob) => [bob.direct]);
      expect((await networkOf(r.bob)).network).toMatch(new RegExp(`^sgiso${run}net-bob${run}-[0-9a-f]{8}$`));
      expect(r.state.host).toBe(r.bobIp);
      expect(r.found[`${r.bobIp}:${r.bobPort}`]).not.toMatch(/^connected/);
      expect(await readLine(r.state.host!, r.state.ports!.default!)).toBe('bob-kernel');
    } finally {
      await backend.close({ stopAll: true });
    }
  }, 120_000);

  test('containers named in attachContainers (spawngate and the hub in containers) join every user network and reach each user', async () => {
    const helper = `sgiso${run}-spawngate`;
    const binds = HOST_BINDS.flatMap((b) => ['-v', b]);
    podman(engine.socketPath!, 'run', '-d', '--name', helper, ...binds, TEST_IMAGE, PY, '-c', 'import time; time.sleep(600)');
    const backend = createDockerBackend(options({ network: `sgiso${run}att`, attachContainers: [helper] }));
    try {
      const r = await probe(backend, (bob) => [bob.direct]);
      expect(r.found[`${r.bobIp}:${r.bobPort}`]).not.toMatch(/^connected/);
      const nets = Object.keys((await docker.getContainer(helper).inspect()).NetworkSettings.Networks);
      expect(nets).toEqual(expect.arrayContaining([(await networkOf(r.bob)).network, (await networkOf(r.alice)).network]));
      const fromHelper = podman(engine.socketPath!, 'exec', helper, PY, '-c', PROBE, `${r.bobIp}:${r.bobPort}`);
      expect(JSON.parse(fromHelper.trim().split('\n').pop()!)[`${r.bobIp}:${r.bobPort}`]).toBe('connected:bob-kernel');
    } finally {
      await Promise.all(created.splice(0).map((c) => c.backend.stop(c.name, { graceSeconds: 0 }).catch(() => undefined)));
      podman(engine.socketPath!, 'rm', '-f', helper);
      await backend.close({ stopAll: true });
    }
  }, 120_000);

  test("a control: the same probe on one shared network (network_per_user off) does connect, so the probe can tell", async () => {
    const backend = createDockerBackend(options({ networkPerUser: false, network: `sgiso${run}shared` }));
    await docker.createNetwork({ Name: `sgiso${run}shared` });
    try {
      const r = await probe(backend, (bob) => [bob.direct]);
      expect(r.found[`${r.bobIp}:${r.bobPort}`]).toBe('connected:bob-kernel');
    } finally {
      await backend.close({ stopAll: true });
    }
  }, 120_000);
}
