/**
 * spawngate killed (SIGKILL) in the middle of a kernel launch on the kubernetes backend. With BullMQ on
 * Redis the job is retried by the restarted process, its create answers 409, the existing pod (same
 * deterministic name, same spec hash) is adopted, and the kernel runs — one pod, never two. With the
 * in-process queue the job died with the process: the start-up reconcile fails the launch and removes
 * its pod — none left behind.
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

async function killMidLaunch(extraEnv: NodeJS.ProcessEnv): Promise<string> {
  const first = await world.start(extraEnv);
  world.fake.setStepMs(800); // a slow node: the pod stays Pending for a few seconds
  const pending = fetch(`${first.url}/api/kernels`, {
    method: 'POST',
    headers: { Authorization: `token ${first.adminToken}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ name: 'conda-env-analysis-python3', env: { KERNEL_USERNAME: 'alice' } }),
  }).catch(() => undefined); // the connection dies with the process
  const known = new Set(world.fake.pods.keys());
  const podName = await waitFor('pod created', async () => [...world.fake.pods.keys()].find((n) => n.startsWith('sg-krn-') && !known.has(n)), 20000, 10);
  first.child.kill('SIGKILL');
  await first.exited;
  await pending;
  world.fake.setStepMs(15);
  return podName;
}

test('with the in-process queue, a launch cut by SIGKILL is failed at restart and its pod removed', async () => {
  const podName = await killMidLaunch({});
  sg = await world.start();
  const kernelId = podName.slice('sg-krn-'.length);
  await waitFor('pod removed', async () => !world.fake.pods.has(podName));
  const [row] = await world.pg.db.query<{ state: string; message: string }>('SELECT state, message FROM kernels WHERE id = $1', [kernelId]);
  expect(row).toMatchObject({ state: 'failed', message: 'spawngate restarted during the launch' });
  await sg.stop();
  sg = undefined;
});

test('a launch interrupted by SIGKILL is finished by the restarted spawngate with the same pod', async () => {
  const from = world.fake.requests.length;
  const podName = await killMidLaunch(env);

  sg = await world.start(env);
  const kernelId = podName.slice('sg-krn-'.length);
  const state = await waitFor('kernel running', async () => {
    const [row] = await world.pg.db.query<{ state: string }>('SELECT state FROM kernels WHERE id = $1', [kernelId]);
    return row && row.state !== 'starting' ? row.state : undefined;
  }, 60000, 200);
  expect(state).toBe('running');

  const creates = world.fake.requests.slice(from).filter((r) => r.verb === 'create' && r.resource === 'pods' && r.name === undefined);
  expect(creates.length).toBeGreaterThanOrEqual(2); // the first attempt and the retried one (409 → adopted)
  expect([...world.fake.pods.keys()].filter((n) => n.startsWith('sg-krn-'))).toEqual([podName]);
  expect(world.fake.requests.slice(from).some((r) => r.verb === 'get' && r.resource === 'pods' && r.name === podName)).toBe(true);

  const ws = await connectWs(`${sg.url.replace('http', 'ws')}/api/kernels/${kernelId}/channels`, { Authorization: `token ${sg.adminToken}` });
  try {
    expect((await execute(ws, 'print("adopted")')).stdout.trim()).toBe('adopted');
  } finally {
    ws.close();
  }
});
