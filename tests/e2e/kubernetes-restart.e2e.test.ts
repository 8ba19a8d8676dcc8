/**
 * spawngate killed (SIGKILL) in the middle of a kernel launch on the kubernetes backend, with BullMQ on
 * Redis: the job is retried by the restarted process, its create answers 409, the existing pod (same
 * deterministic name, same spec hash) is adopted, and the kernel runs — one pod, never two.
 */
import { randomBytes } from 'node:crypto';
import { connectWs, execute } from '../support/jupyter-ws';
import { createKubeWorld, type KubeWorld } from './kubernetes-setup';
import { waitFor, type Spawngate } from './harness';

jest.setTimeout(120_000);

let world: KubeWorld;
let sg: Spawngate | undefined;
const env = {
  SPAWNGATE_REDIS_URL: process.env.SPAWNGATE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379',
  SPAWNGATE_QUEUE_PREFIX: `sg-k8s-restart-${randomBytes(4).toString('hex')}`,
  SPAWNGATE_JOB_LOCK_SECONDS: '2',
};

beforeAll(async () => {
  world = await createKubeWorld();
});

afterAll(async () => {
  await sg?.stop();
  if (world) {
    expect(world.fake.denied).toEqual([]);
    expect(world.fake.invalid).toEqual([]);
    await world.close();
  }
});

test('a launch interrupted by SIGKILL is finished by the restarted spawngate with the same pod', async () => {
  sg = await world.start(env);
  world.fake.setStepMs(800); // a slow node: the pod stays Pending for a few seconds
  const first = sg;
  const pending = fetch(`${first.url}/api/kernels`, {
    method: 'POST',
    headers: { Authorization: `token ${first.adminToken}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'conda-env-analysis-python3', env: { KERNEL_USERNAME: 'alice' } }),
  }).catch(() => undefined); // the connection dies with the process
  const podName = await waitFor('pod created', async () => [...world.fake.pods.keys()].find((n) => n.startsWith('sg-krn-')), 20000, 10);
  first.child.kill('SIGKILL');
  await first.exited;
  await pending;
  world.fake.setStepMs(15);

  sg = await world.start(env);
  const kernelId = podName.slice('sg-krn-'.length);
  const state = await waitFor('kernel running', async () => {
    const [row] = await world.pg.db.query<{ state: string }>('SELECT state FROM kernels WHERE id = $1', [kernelId]);
    return row && row.state !== 'starting' ? row.state : undefined;
  }, 60000, 200);
  expect(state).toBe('running');

  const creates = world.fake.requests.filter((r) => r.verb === 'create' && r.resource === 'pods' && r.name === undefined);
  expect(creates.length).toBeGreaterThanOrEqual(2); // the first attempt and the retried one (409 → adopted)
  expect([...world.fake.pods.keys()].filter((n) => n.startsWith('sg-krn-'))).toEqual([podName]);
  expect(world.fake.requests.some((r) => r.verb === 'get' && r.resource === 'pods' && r.name === podName)).toBe(true);

  const ws = await connectWs(`${sg.url.replace('http', 'ws')}/api/kernels/${kernelId}/channels`, { Authorization: `token ${sg.adminToken}` });
  try {
    expect((await execute(ws, 'print("adopted")')).stdout.trim()).toBe('adopted');
  } finally {
    ws.close();
  }
});
