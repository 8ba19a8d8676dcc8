/**
 * Enterprise Gateway launchers through the Kubernetes stand-in (its kubelet runs each pod as a local
 * process with a pod IP of its own in 127/8; see fake-apiserver.ts): tests/eg/eg_launcher.py is the
 * pod's command, reports to `kernels.response_address` from its pod IP, and is reached there. The
 * kernel runs as the home's owner with the experiment's limits; interrupts reach it through the
 * launcher's communication port, the way kernels on Kubernetes get real interrupts with no signal
 * verb in the API; a version-0 payload from a pod fails the launch at once.
 */
import fs from 'node:fs';
import path from 'node:path';
import { connectWs, execute } from '../support/jupyter-ws';
import { ALICE_UID, createKubeWorld, EXPERIMENT_NS, KERNEL_IMAGE, type KubeWorld } from './kubernetes-setup';
import type { Spawngate } from './harness';

jest.setTimeout(120_000);

const EG_IMAGE = 'registry.example/elyra-kernel-py:3.2.3';
const K8S_PROXY = 'enterprise_gateway.services.processproxies.k8s.KubernetesProcessProxy';

let world: KubeWorld;
let sg: Spawngate;

function api(method: string, p: string, body?: unknown): Promise<Response> {
  return fetch(`${sg.url}${p}`, {
    method,
    headers: { Authorization: `token ${sg.adminToken}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function launch(name: string): Promise<{ status: number; body: { id: string; message?: string } }> {
  const res = await api('POST', '/api/kernels', { name, env: { KERNEL_USERNAME: 'alice' } });
  return { status: res.status, body: (await res.json()) as { id: string; message?: string } };
}

beforeAll(async () => {
  world = await createKubeWorld({
    fake: {
      images: {
        [KERNEL_IMAGE]: { env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' } },
        // EG's kernel image: its own launcher, no spawngate package.
        [EG_IMAGE]: { env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' } },
      },
    },
    // The stand-in's pods live on this host's loopback: the response address is there too.
    config: { kernels: { image: KERNEL_IMAGE, allowed_images: [EG_IMAGE], response_address: '127.0.0.1' } },
  });
  // The launcher as the image holds it, readable by the pods' uid.
  const image = path.join(world.dir, 'eg-image');
  fs.mkdirSync(image, { mode: 0o755 });
  fs.copyFileSync(path.join(__dirname, '..', 'eg', 'eg_launcher.py'), path.join(image, 'eg_launcher.py'));
  fs.chmodSync(path.join(image, 'eg_launcher.py'), 0o644);
  const argv = ['/usr/bin/python3', path.join(image, 'eg_launcher.py'), '--kernel-id', '{kernel_id}', '--port-range', '{port_range}', '--response-address', '{response_address}', '--public-key', '{public_key}'];
  const metadata = { process_proxy: { class_name: K8S_PROXY, config: { image_name: EG_IMAGE } }, spawngate: { environment: 'analysis' } };
  const kernels = path.join(world.homes, 'alice', '.local', 'share', 'jupyter', 'kernels');
  for (const [name, env] of [['eg_k8s', {}], ['eg_k8s_v0', { SG_TEST_PAYLOAD_VERSION: '0' }]] as const) {
    fs.mkdirSync(path.join(kernels, name), { recursive: true });
    fs.writeFileSync(path.join(kernels, name, 'kernel.json'), JSON.stringify({ argv, env, display_name: name, language: 'python', metadata }));
  }
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

test('an EG launcher pod reports from its pod IP, runs as the home owner with the limits, and is interrupted through its communication port', async () => {
  const started = await launch('eg_k8s');
  expect(started.status).toBe(201);
  const id = started.body.id;
  const pod = world.fake.pods.get(`sg-krn-${id}`)!;
  expect(pod.metadata.namespace).toBe(EXPERIMENT_NS);
  expect(pod.spec.containers[0].image).toBe(EG_IMAGE);
  expect(pod.spec.containers[0].resources.limits).toMatchObject({ cpu: '4000m', memory: '8192Mi' });
  const env = Object.fromEntries((pod.spec.containers[0].env as { name: string; value: string }[]).map((e) => [e.name, e.value]));
  expect(env.RESPONSE_ADDRESS).toMatch(/^127\.0\.0\.1:\d+$/);
  expect(env.SPAWNGATE_CONNECTION_INFO).toBeUndefined();
  const podIP = pod.status.podIP as string;
  expect(podIP).not.toBe('127.0.0.1');
  const row = (await world.pg.db.query<{ host: string; backend_ref: Record<string, unknown> }>('SELECT host, backend_ref FROM kernels WHERE id = $1', [id]))[0]!;
  expect(row.host).toBe(podIP);
  expect(row.backend_ref.launcher_comm).toEqual({ host: podIP, port: expect.any(Number) });

  const ws = await connectWs(`${sg.url.replace('http', 'ws')}/api/kernels/${id}/channels`, { Authorization: `token ${sg.adminToken}` });
  try {
    expect((await execute(ws, 'import os; print(os.getuid())')).stdout.trim()).toBe(String(process.getuid?.() === 0 ? ALICE_UID : process.getuid?.()));
    const sleeping = execute(ws, 'import time; time.sleep(60)', 40_000);
    await new Promise((r) => setTimeout(r, 1000));
    expect((await api('POST', `/api/kernels/${id}/interrupt`)).status).toBe(204);
    expect((await sleeping).reply.content.ename).toBe('KeyboardInterrupt');
    expect((await execute(ws, "import sys; print(sys.modules['sg_eg_launcher_log'].requests)")).stdout.trim()).toBe("[{'signum': 2}]");
  } finally {
    ws.close();
  }
  expect((await api('DELETE', `/api/kernels/${id}`)).status).toBe(204);
});

test('a version-0 payload from a pod fails the launch at once, saying why', async () => {
  const t0 = Date.now();
  const res = await launch('eg_k8s_v0');
  expect(res.status).toBe(500);
  expect(res.body.message).toContain('version-0');
  expect(Date.now() - t0).toBeLessThan(30_000);
});
