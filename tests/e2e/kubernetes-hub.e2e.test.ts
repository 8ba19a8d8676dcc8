/**
 * JupyterHub 3.0 spawns through spawngate on the kubernetes backend: the single-user server is a pod
 * (Debian's jupyterhub-singleuser run by the stand-in's kubelet at the pod IP, as the home's owner),
 * the hub's proxy reaches it at pod IP:port, and its notebook kernels are pods too. Failures a cluster
 * produces (unschedulable, image pull error) reach the hub API with their reason.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { renderDryRun } from '../../src/cli/dry-run';
import { loadConfig } from '../../src/config';
import { connectWs, execute } from '../support/jupyter-ws';
import { ALICE_UID, createKubeWorld, MISSING_IMAGE, SERVER_IMAGE, type KubeWorld } from './kubernetes-setup';
import { startHub, waitFor, type Hub, type Spawngate } from './harness';

jest.setTimeout(180_000);

let world: KubeWorld;
let sg: Spawngate;
let hub: Hub;

interface ServerModel {
  state: string;
  url: string | null;
  message: string | null;
}

async function hubApi(method: string, p: string, body?: unknown): Promise<{ status: number; body: ServerModel }> {
  const res = await fetch(`${sg.url}/api${p}`, {
    method,
    headers: { Authorization: `token ${sg.hubToken}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as ServerModel };
}

beforeAll(async () => {
  world = await createKubeWorld({
    config: {
      profiles: [
        {
          slug: 'standard',
          display_name: 'Standard',
          default: true,
          image: SERVER_IMAGE,
          resources: { cpu_request: 0.5, cpu_limit: 2, memory_request_mib: 512, memory_limit_mib: 2048 },
          kubernetes: { annotations: { 'example.com/team': 'climate' }, tolerations: [{ key: 'jupyter', operator: 'Exists', effect: 'NoSchedule' }] },
        },
        { slug: 'nowhere', display_name: 'No node fits', image: SERVER_IMAGE, kubernetes: { nodeSelector: { 'spawngate.test/unschedulable': 'true' } } },
        { slug: 'badimage', display_name: 'Missing image', image: MISSING_IMAGE },
      ],
    },
  });
  sg = await world.start();
  hub = await startHub({ spawngateUrl: sg.url, hubToken: sg.hubToken });
});

afterAll(async () => {
  await hub?.api('DELETE', '/users/alice/server');
  await hub?.stop();
  await sg?.stop();
  if (world) {
    expect(world.fake.denied).toEqual([]);
    expect(world.fake.invalid).toEqual([]);
    await world.close();
  }
});

test("the hub spawns alice's server as a pod, reaches it at the pod IP, and her notebook kernel runs as a pod", async () => {
  await hub.api('POST', '/users/alice');
  await hub.api('POST', '/users/alice/server');
  await waitFor('alice ready', async () => (await hub.api<{ servers: Record<string, { ready: boolean }> }>('GET', '/users/alice')).body.servers?.['']?.ready, 90000, 250);

  const server = [...world.fake.pods.values()].find((p) => p.metadata.labels['app.kubernetes.io/component'] === 'server')!;
  expect(server.metadata.annotations['example.com/team']).toBe('climate');
  expect(server.spec.tolerations).toEqual([{ key: 'jupyter', operator: 'Exists', effect: 'NoSchedule' }]);
  expect(server.spec.containers[0].securityContext).toMatchObject({ allowPrivilegeEscalation: false, runAsNonRoot: true });
  expect(server.spec.automountServiceAccountToken).toBe(false);
  // `spawngate dry-run` shows this pod as created, except the hub's environment and the row id.
  const [dry] = YAML.parseAllDocuments(await renderDryRun(loadConfig(sg.env), { user: 'alice' })).map((d) => d.toJS() as typeof server);
  const received = world.fake.received.find((o) => o.kind === 'Pod' && o.metadata.name === server.metadata.name)!;
  const withoutEnv = (spec: typeof server) => ({ ...spec, containers: spec.containers.map((c: Record<string, unknown>) => ({ ...c, env: undefined })) });
  expect(withoutEnv(received.spec)).toEqual(withoutEnv(dry!.spec));
  expect(received.spec.containers[0].env.map((e: { name: string }) => e.name)).toEqual(expect.arrayContaining(dry!.spec.containers[0].env.map((e: { name: string }) => e.name)));

  const model = await hubApi('GET', '/users/alice/server');
  expect(model.body.url).toBe(`http://${server.status.podIP}:8888`);

  const headers = { Authorization: `token ${hub.token}`, 'Content-Type': 'application/json' };
  const status = await fetch(`${hub.url}/user/alice/api/status`, { headers });
  expect(status.status).toBe(200);

  const res = await fetch(`${hub.url}/user/alice/api/kernels`, { method: 'POST', headers, body: JSON.stringify({ name: 'conda-env-analysis-python3' }) });
  expect(res.status).toBe(201);
  const kernel = (await res.json()) as { id: string };
  expect(world.fake.pods.get(`sg-krn-${kernel.id}`)?.metadata.namespace).toBe('sg-exp-climate');
  const ws = await connectWs(`${hub.url.replace('http', 'ws')}/user/alice/api/kernels/${kernel.id}/channels`, { Authorization: `token ${hub.token}` });
  try {
    const out = await execute(ws, "import os, sys; print(sys.executable, os.environ['KERNEL_MEMORY_LIMIT'], os.environ['KERNEL_USERNAME'])");
    expect(out.stdout.trim()).toBe(`${path.join(world.envPrefix, 'bin', 'python')} 8192Mi alice`);
  } finally {
    ws.close();
  }
  expect((await fetch(`${hub.url}/user/alice/api/kernels/${kernel.id}`, { method: 'DELETE', headers })).status).toBe(204);

  await hub.api('DELETE', '/users/alice/server');
  await waitFor('server pod gone', async () => ![...world.fake.pods.values()].some((p) => p.metadata.labels['app.kubernetes.io/component'] === 'server'), 30000);
});

test.each([
  ['nowhere', /Unschedulable: 0\/3 nodes are available/],
  ['badimage', /ErrImagePull|ImagePullBackOff/],
])('a server whose pod cannot start (profile %s) fails with the reason', async (profile, reason) => {
  const user = `bob-${profile}`;
  // Pods run as the home's owner and a missing home is refused: bob has one, so the pod itself fails.
  fs.mkdirSync(path.join(world.homes, user), { recursive: true });
  if (process.getuid?.() === 0) fs.chownSync(path.join(world.homes, user), ALICE_UID + 1, ALICE_UID + 1);
  const started = await hubApi('POST', `/users/${user}/server`, { env: {}, user_options: { profile } });
  expect(started.status).toBe(202);
  const done = await waitFor('server failed', async () => {
    const m = await hubApi('GET', `/users/${user}/server?wait=ready&timeout=10`);
    return m.body.state !== 'pending' ? m.body : undefined;
  }, 30000);
  expect(done.state).toBe('failed');
  expect(done.message).toMatch(reason);
  // The pod's events reached the hub's progress stream on the way. (For an unschedulable pod the
  // scheduler's event may arrive after the status that already ended the start; its message is the same.)
  const events = await world.pg.db.query<{ message: string }>(
    'SELECT e.message FROM server_events e JOIN servers s ON s.id = e.server_id WHERE s.username = $1 ORDER BY e.id',
    [user],
  );
  if (profile === 'badimage') expect(events.map((e) => e.message)).toEqual(expect.arrayContaining([expect.stringMatching(/^Kubernetes backend: Scheduled: Successfully assigned/), expect.stringMatching(/^Kubernetes backend: Pulling: Pulling image/)]));
});
