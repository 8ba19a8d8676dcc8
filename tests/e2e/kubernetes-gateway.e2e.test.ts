/**
 * Kernels through the gateway API on the kubernetes backend, end to end: a spawngate process with
 * SPAWNGATE_BACKEND=kubernetes talks to the API stand-in (whose kubelet runs each pod's command as a
 * local process at its own loopback pod IP), `spawngate.launcher` reads the connection Secret the
 * kubelet mounted, and code runs over the websocket. Then what only a cluster does to a kernel: failure
 * states, watch disconnects and 410, spawngate killed mid-launch (one pod, adopted), and reconciliation
 * of orphans both ways. Every request stays inside the documented Role.
 */
import path from 'node:path';
import YAML from 'yaml';
import { renderDryRun } from '../../src/cli/dry-run';
import { loadConfig } from '../../src/config';
import { connectWs, execute } from '../support/jupyter-ws';
import { createKubernetesBackend, type KubernetesBackendOptions } from '../../src/backends/kubernetes';
import { ALICE_UID, createKubeWorld, EXPERIMENT_NS, GPU_EXPERIMENT_NS, SERVER_IMAGE, type KubeWorld } from './kubernetes-setup';
import { waitFor, type Spawngate } from './harness';

jest.setTimeout(120_000);

const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined } as unknown as KubernetesBackendOptions['logger'];

let world: KubeWorld;
let sg: Spawngate;

interface KernelModel {
  id: string;
  name: string;
  execution_state: string;
}

function api(s: Spawngate, method: string, p: string, body?: unknown): Promise<Response> {
  return fetch(`${s.url}${p}`, {
    method,
    headers: { Authorization: `token ${s.adminToken}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function launch(s: Spawngate, name: string): Promise<{ status: number; body: KernelModel & { message?: string } }> {
  const res = await api(s, 'POST', '/api/kernels', { name, env: { KERNEL_USERNAME: 'alice' } });
  return { status: res.status, body: (await res.json()) as KernelModel & { message?: string } };
}

async function runs(s: Spawngate, kernelId: string, code: string): Promise<string> {
  const ws = await connectWs(`${s.url.replace('http', 'ws')}/api/kernels/${kernelId}/channels`, { Authorization: `token ${s.adminToken}` });
  try {
    return (await execute(ws, code)).stdout.trim();
  } finally {
    ws.close();
  }
}

const podOf = (kernelId: string) => `sg-krn-${kernelId}`;
const TINY_SERVER = [
  'import http.server, os, urllib.parse',
  "u = urllib.parse.urlparse(os.environ['JUPYTERHUB_SERVICE_URL'])",
  'http.server.HTTPServer((u.hostname, u.port), http.server.SimpleHTTPRequestHandler).serve_forever()',
].join('\n');

beforeAll(async () => {
  world = await createKubeWorld({
    // Secrets of deleted pods linger as under the real (asynchronous) garbage collector.
    fake: { gcDelayMs: 3000 },
    config: {
      // A stand-in single-user server: any HTTP answer at JUPYTERHUB_SERVICE_URL counts as ready.
      profiles: [{ slug: 'tiny', display_name: 'Tiny', image: SERVER_IMAGE, command: ['/usr/bin/python3', '-c', TINY_SERVER] }],
    },
  });
  sg = await world.start();
});

afterAll(async () => {
  await sg?.stop();
  if (world) {
    expect(world.fake.denied).toEqual([]);
    expect(world.fake.invalid).toEqual([]);
    await world.close();
  }
});

test("a kernel launched through POST /api/kernels runs as a pod in its experiment's namespace and executes code", async () => {
  const { status, body } = await launch(sg, 'conda-env-analysis-python3');
  expect(status).toBe(201);
  const pod = world.fake.pods.get(podOf(body.id))!;
  expect(pod.metadata.namespace).toBe(EXPERIMENT_NS);
  expect(pod.metadata.labels).toMatchObject({ kernel_id: body.id, component: 'kernel', app: 'spawngate', 'app.kubernetes.io/managed-by': 'spawngate' });
  expect(pod.spec.restartPolicy).toBe('Never');
  expect(pod.spec.containers[0].resources).toEqual({ requests: { cpu: '1000m', memory: '1024Mi' }, limits: { cpu: '4000m', memory: '8192Mi' } });
  // Home: the EFS claim, subPath = user, at the same path as in the home tree; run as the home's owner.
  const home = path.join(world.homes, 'alice');
  expect(pod.spec.volumes).toEqual(expect.arrayContaining([{ name: 'spawngate-home', persistentVolumeClaim: { claimName: 'efs-homes' } }]));
  expect(pod.spec.containers[0].volumeMounts).toEqual(expect.arrayContaining([{ name: 'spawngate-home', mountPath: home, subPath: 'alice' }]));
  const expectedUid = process.getuid?.() === 0 ? ALICE_UID : process.getuid!();
  expect(pod.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: process.getuid?.() === 0 ? ALICE_UID : expect.any(Number) });
  // The key is in the Secret the pod owns, never in the pod.
  const [secret] = world.fake.secretsOwnedBy(podOf(body.id));
  expect(JSON.stringify(pod)).not.toContain(JSON.parse(secret!.stringData['connection.json']).key);

  // What `spawngate dry-run` prints is what was created (the kernel id aside).
  const dry = YAML.parseAllDocuments(await renderDryRun(loadConfig(sg.env), { user: 'alice', kernel: 'conda-env-analysis-python3' }, world.pg.db)).map((d) => d.toJS() as typeof pod).filter((d) => d?.kind === 'Pod' && d.metadata.labels.component === 'kernel');
  const received = world.fake.received.find((o) => o.kind === 'Pod' && o.metadata.name === podOf(body.id))!;
  // The kernel id and the connection Secret's per-pod suffix differ by design.
  const sameId = (o: unknown) =>
    JSON.parse(JSON.stringify(o).replaceAll(body.id, '00000000-0000-4000-8000-000000000000').replace(/(sg-krn-00000000-0000-4000-8000-000000000000)-[0-9a-f]{8}/g, '$1-SUFFIX')) as unknown;
  expect(sameId(received.spec)).toEqual(sameId(dry[0]!.spec));
  expect(sameId(received.metadata.labels)).toEqual(dry[0]!.metadata.labels);

  const out = await runs(sg, body.id, "import os, sys; print(sys.executable, os.getuid(), os.environ['HOME'], os.environ['KERNEL_CPUS_LIMIT'], os.environ['KERNEL_USERNAME'], 'SPAWNGATE_CONNECTION_INFO' in os.environ)");
  expect(out).toBe(`${path.join(world.envPrefix, 'bin', 'python')} ${expectedUid} ${home} 4 alice False`);
  expect((await api(sg, 'DELETE', `/api/kernels/${body.id}`)).status).toBe(204);
  await waitFor('pod removed', async () => !world.fake.pods.has(podOf(body.id)));
  await waitFor('its Secret garbage-collected', async () => world.fake.secretsOwnedBy(podOf(body.id)).length === 0);
});

test('an image pull error fails the launch with the reason, not a timeout', async () => {
  const { status, body } = await launch(sg, 'broken-image');
  expect(status).toBeGreaterThanOrEqual(500);
  expect(body.message).toMatch(/ErrImagePull|ImagePullBackOff/);
  // The failed launch removes its pod.
  await waitFor('failed pod removed', async () => ![...world.fake.pods.values()].some((p) => String(p.spec.containers[0].image).includes('does-not-exist')));
});

test("a kernel whose experiment's GPU no node has fails at once as Unschedulable, from its own namespace", async () => {
  const { status, body } = await launch(sg, 'conda-env-deep-python3');
  expect(status).toBeGreaterThanOrEqual(500);
  expect(body.message).toMatch(/Unschedulable: 0\/3 nodes are available: 3 Insufficient nvidia.com\/gpu/);
  const pod = world.fake.received.filter((o) => o.kind === 'Pod').pop()!;
  expect(pod.metadata.namespace).toBe(GPU_EXPERIMENT_NS);
  expect(pod.spec.containers[0].resources.limits['nvidia.com/gpu']).toBe('1');
});

test.each([
  ['OOMKilled', (n: string) => world.fake.oomKill(n), /OOMKilled/],
  ['Evicted', (n: string) => world.fake.evict(n), /Evicted: The node was low on resource/],
  ['deleted by someone else', (n: string) => world.fake.deleteExternally(n), /pod deleted \(not by spawngate\)/],
] as const)('a running kernel whose pod is %s is reported dead with the reason', async (_label, act, reason) => {
  const { status, body } = await launch(sg, 'conda-env-analysis-python3');
  expect(status).toBe(201);
  act(podOf(body.id));
  const dead = await waitFor('kernel dead', async () => {
    const res = await api(sg, 'GET', `/api/kernels/${body.id}`);
    const k = (await res.json()) as KernelModel;
    return k.execution_state === 'dead' ? k : undefined;
  });
  expect(dead.execution_state).toBe('dead');
  const [row] = await world.pg.db.query<{ state: string; message: string }>('SELECT state, message FROM kernels WHERE id = $1', [body.id]);
  expect(row).toMatchObject({ state: 'dead' });
  expect(row!.message).toMatch(reason);
  await api(sg, 'DELETE', `/api/kernels/${body.id}`);
});

test('restart replaces the pod (with its own connection Secret) and the kernel answers again; interrupt goes over ZMQ', async () => {
  const { body } = await launch(sg, 'conda-env-analysis-python3');
  const firstUid = world.fake.pods.get(podOf(body.id))!.metadata.uid;
  expect(await runs(sg, body.id, 'x = 1; print(x)')).toBe('1');
  const res = await api(sg, 'POST', `/api/kernels/${body.id}/restart`);
  expect(res.status).toBe(200);
  const pod = world.fake.pods.get(podOf(body.id))!;
  expect(pod.metadata.uid).not.toBe(firstUid);
  expect(await runs(sg, body.id, "print('x' in dir())")).toBe('False');

  const ws = await connectWs(`${sg.url.replace('http', 'ws')}/api/kernels/${body.id}/channels`, { Authorization: `token ${sg.adminToken}` });
  try {
    const running = execute(ws, 'import time\ntry:\n    time.sleep(60)\nexcept KeyboardInterrupt:\n    print("interrupted")');
    await new Promise((r) => setTimeout(r, 1000));
    expect((await api(sg, 'POST', `/api/kernels/${body.id}/interrupt`)).status).toBe(204);
    expect((await running).stdout.trim()).toBe('interrupted');
  } finally {
    ws.close();
  }
  await api(sg, 'DELETE', `/api/kernels/${body.id}`);
});

test('a launch survives a dropped watch and a 410 relist in the middle', async () => {
  const launching = launch(sg, 'conda-env-analysis-python3');
  await waitFor('pod created', async () => [...world.fake.pods.values()].some((p) => p.status?.phase === 'Pending'), 20000, 5);
  world.fake.advanceVersion(); // the cluster moves on, then compaction expires the watch's version
  world.fake.compact();
  world.fake.dropWatches();
  const { status, body } = await launching;
  expect(status).toBe(201);
  expect(await runs(sg, body.id, 'print(6 * 7)')).toBe('42');
  await api(sg, 'DELETE', `/api/kernels/${body.id}`);
});

test('reconciliation at start-up: unknown spawngate pods are removed, a kernel and a server whose pods vanished are closed', async () => {
  const { body } = await launch(sg, 'conda-env-analysis-python3');
  const hub = { Authorization: `token ${sg.hubToken}`, 'Content-Type': 'application/json' };
  expect((await fetch(`${sg.url}/api/users/alice/server`, { method: 'POST', headers: hub, body: JSON.stringify({ env: {}, user_options: {} }) })).status).toBe(202);
  const ready = await waitFor('server running', async () => {
    const m = (await (await fetch(`${sg.url}/api/users/alice/server?wait=ready&timeout=10`, { headers: hub })).json()) as { state: string; message: string | null };
    return m.state !== 'pending' ? m : undefined;
  });
  expect(ready.state).toBe('running');
  const serverPod = [...world.fake.pods.values()].find((p) => p.metadata.name.startsWith('sg-srv-alice'))!.metadata.name as string;
  await sg.stop(); // SIGTERM: with the kubernetes backend pods keep running
  expect(world.fake.pods.has(podOf(body.id))).toBe(true);

  // While spawngate is down: its kernel's pod disappears, and a labelled pod nobody recorded appears.
  world.fake.removePodSilently(podOf(body.id));
  world.fake.removePodSilently(serverPod);
  const orphan = `sg-krn-00000000-0000-4000-8000-${Date.now().toString().padStart(12, '0').slice(-12)}`;
  const orphanServer = 'sg-srv-mallory-0123456789';
  const other = createKubernetesBackend({ namespace: EXPERIMENT_NS, kubeconfig: { from: 'file', path: path.join(world.dir, 'kubeconfig.yaml') }, logger: silent, defaultRunAsUser: 1000 });
  await other.ensure({ name: orphan, kind: 'kernel', labels: {}, command: ['/usr/bin/python3', '-c', 'import time; time.sleep(600)'], env: {}, image: 'registry.example/spawngate-kernel:test' });
  await other.close();
  const defaultNs = createKubernetesBackend({ namespace: world.fake.namespace, kubeconfig: { from: 'file', path: path.join(world.dir, 'kubeconfig.yaml') }, logger: silent, defaultRunAsUser: 1000 });
  await defaultNs.ensure({ name: orphanServer, kind: 'server', labels: {}, command: ['/usr/bin/python3', '-c', 'import time; time.sleep(600)'], env: {}, image: SERVER_IMAGE });
  await defaultNs.close();

  sg = await world.start();
  await waitFor('orphans removed', async () => !world.fake.pods.has(orphan) && !world.fake.pods.has(orphanServer));
  const [row] = await world.pg.db.query<{ state: string; message: string }>('SELECT state, message FROM kernels WHERE id = $1', [body.id]);
  expect(row).toMatchObject({ state: 'dead', message: 'kernel process disappeared' });
  const server = (await (await fetch(`${sg.url}/api/users/alice/server`, { headers: hub })).json()) as { state: string; message: string };
  expect(server).toMatchObject({ state: 'failed', message: 'server disappeared while spawngate was down' });
});
