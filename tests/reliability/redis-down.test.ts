/**
 * Redis down. One `spawngate serve` (API + workers) on Postgres and a throwaway redis-server. With Redis
 * killed: a running kernel keeps working over its websocket (and a new websocket to it opens);
 * `POST /api/kernels` answers 503 naming the job queue within a few seconds, and leaves no phantom
 * kernel behind; /readyz says the queue is down. Redis restarted on the same port: launches work again
 * without restarting spawngate, and the kernel list holds exactly the kernels that were started.
 */
import { Cluster, startRedis, waitFor } from './helpers';

jest.setTimeout(120_000);

let c: Cluster;

beforeAll(async () => {
  c = await Cluster.create({ redis: true });
});

afterAll(async () => {
  await c?.close();
});

test('Redis down: kernels keep working, launches get a prompt 503, recovery without restart', async () => {
  const sg = await c.start('serve');
  const k1 = await c.launch(sg);
  const ws = await c.connect(sg, k1);
  try {
    expect((await ws.execute('x = 1; print("ok")')).stdout).toBe('ok\n');

    const port = c.redis!.port;
    await c.redis!.stop();

    // Running kernels keep working over their websockets.
    expect((await ws.execute('print(x + 1)', 10_000)).stdout).toBe('2\n');
    const second = await c.connect(sg, k1);
    try {
      expect((await second.execute('print(x + 2)', 10_000)).stdout).toBe('3\n');
    } finally {
      second.close();
    }

    // A launch is refused promptly with a message that says what is wrong.
    const refused = await c.api<{ message: string }>(sg, 'POST', '/api/kernels', c.launchBody(), { timeoutMs: 20_000 });
    expect(refused.status).toBe(503);
    expect(refused.ms).toBeLessThan(5_000);
    expect(refused.body.message).toMatch(/job queue/i);
    expect(refused.body.message).toMatch(/redis/i);
    const ready = await c.api<{ checks: Record<string, string> }>(sg, 'GET', '/readyz', undefined, { timeoutMs: 10_000 });
    expect(ready.status).toBe(503);
    expect(ready.body.checks.database).toBe('ok');

    // Listing needs no Redis. (What it lists is checked at the end, after recovery.)
    const during = await c.api<Array<{ id: string; execution_state: string }>>(sg, 'GET', '/api/kernels');
    expect(during.status).toBe(200);

    // The kernel still runs code after the refusals.
    expect((await ws.execute('print(x + 3)', 10_000)).stdout).toBe('4\n');

    // Redis back on the same port (empty): launches work again, same spawngate process.
    c.redis = await startRedis(port);
    await waitFor('/readyz 200', async () => (await c.api(sg, 'GET', '/readyz', undefined, { timeoutMs: 5_000 })).status === 200, 30_000, 500);
    let k2: string | undefined;
    await waitFor(
      'a launch to succeed after Redis is back',
      async () => {
        const res = await c.api<{ id: string }>(sg, 'POST', '/api/kernels', c.launchBody(), { timeoutMs: 60_000 });
        if (res.status === 201) k2 = res.body.id;
        else if (res.status !== 503) throw new Error(`launch answered ${res.status}: ${JSON.stringify(res.body)}`);
        return res.status === 201;
      },
      60_000,
      1_000,
    );
    const ws2 = await c.connect(sg, k2!);
    try {
      expect((await ws2.execute('print(6*7)')).stdout).toBe('42\n');
    } finally {
      ws2.close();
    }
    expect(sg.child.exitCode).toBeNull();
    expect((await ws.execute('print(x)', 10_000)).stdout).toBe('1\n');

    // The refused launch is not a kernel: neither during the outage nor after it is it listed (or
    // counted against max_kernels_per_user / _per_experiment, which count the same rows).
    const after = await c.api<Array<{ id: string; execution_state: string }>>(sg, 'GET', '/api/kernels');
    const phantom = (list: Array<{ id: string; execution_state: string }>) => list.filter((k) => k.id !== k1 && k.id !== k2);
    expect({ during: phantom(during.body), after: phantom(after.body) }).toEqual({ during: [], after: [] });
  } finally {
    ws.close();
  }
});
