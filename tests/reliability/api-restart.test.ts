/**
 * An API process restart. Two API processes (`serve --no-workers`) and one worker on the same Postgres
 * and Redis.
 *
 * 1. A websocket client attached to a kernel through process A sets a variable and starts a slow cell;
 *    A is SIGKILLed; the client reconnects through process B with the same session id and continues
 *    with the same kernel process: the variable and the slow cell's effect are there.
 * 2. With no client left anywhere, the kernel model's `connections` drops back to 0 (culling with
 *    `cull_connected: false` relies on it).
 * 3. A client that reconnects through a process with no bridge to its kernel yet (as after a restart)
 *    and sends a cell at once gets that cell's output: nothing is lost while the new bridge connects.
 */
import { CONNECTION_TTL_SECONDS } from '../../src/db';
import { Cluster, waitFor, type KernelSocket, type Node } from './helpers';

jest.setTimeout(120_000);

let c: Cluster;
let b: Node;
let first: string;

beforeAll(async () => {
  c = await Cluster.create({ redis: true });
});

afterAll(async () => {
  await c?.close();
});

test('websocket clients of a killed API process reconnect to another and continue with the same kernel', async () => {
  const a = await c.start('api');
  b = await c.start('api');
  await c.start('worker');

  const id = (first = await c.launch(a));
  const [pid] = c.kernelProcesses(id).map((p) => p.pid);
  expect(pid).toBeDefined();

  const session = 'sess-reconnect-0001';
  const viaA: KernelSocket = await c.connect(a, id, session);
  expect((await viaA.execute('x = 41; print("set")')).stdout).toBe('set\n');
  // A cell still running when A dies: the kernel finishes it regardless.
  const seen = viaA.messages.length;
  viaA.send('import time; time.sleep(1.5); y = 5');
  await viaA.waitForStatus('busy', 5_000, seen);

  a.child.kill('SIGKILL');
  await a.exited;
  await waitFor('the websocket to A closes', async () => viaA.closed, 10_000);

  // Reconnect to B with the same session id: same kernel, same interpreter state.
  const viaB = await c.connect(b, id, session);
  try {
    const r = await viaB.execute('print(x + 1, y)', 30_000);
    expect(r.reply.content.status).toBe('ok');
    expect(r.stdout).toBe('42 5\n');
  } finally {
    viaB.close();
  }
  expect(c.kernelProcesses(id).map((p) => p.pid)).toEqual([pid]);
  // The model is written back in batches (every 2 s): it settles on idle.
  await waitFor('the model to say idle', async () => (await c.api<{ execution_state: string }>(b, 'GET', `/api/kernels/${id}`)).body.execution_state === 'idle', 6_000, 250);
});

test("after every client left, the killed process's websocket no longer counts in the kernel model", async () => {
  // The first test's only client left through B; A, which had the other one, was killed.
  let last = -1;
  try {
    await waitFor(
      'connections to drop to 0',
      async () => {
        last = (await c.api<{ connections: number }>(b, 'GET', `/api/kernels/${first}`)).body.connections;
        return last === 0;
      },
      // A replica's count stays valid for CONNECTION_TTL_SECONDS after its last refresh.
      (CONNECTION_TTL_SECONDS + 5) * 1000,
      500,
    );
  } catch {
    // A stale count keeps the kernel from ever being culled (cull_connected defaults to false).
    throw new Error(`connections is still ${last} with no websocket attached anywhere (the killed API process's count is never released)`);
  }
});

test('a client reconnecting through a fresh API process gets the output of the first cell it sends', async () => {
  // Kernels launched one by one (concurrent launches can collide on ports, see concurrent-launch.test.ts).
  const ids: string[] = [];
  for (let i = 0; i < 10; i++) ids.push(await c.launch(b));
  const lost: string[] = [];
  // Four API processes in turn, each killed after its round: every connection below is the first to
  // its kernel in that process, as after a restart. The client sends its cell as soon as it is open.
  // (A lost output is a race; 40 reconnections make it show in practically every run.)
  for (let round = 0; round < 4; round++) {
    const p = await c.start('api');
    for (const [i, id] of ids.entries()) {
      const ws = await c.connect(p, id, `sess-${i}`, { settle: false });
      try {
        const r = await ws.execute(`print(${round * 100 + i})`, 8_000).catch((err: Error) => ({ stdout: `(${err.message})` }));
        if (r.stdout !== `${round * 100 + i}\n`) lost.push(`round ${round}, kernel ${i}: stdout ${JSON.stringify(r.stdout)}`);
      } finally {
        ws.close();
      }
    }
    p.child.kill('SIGKILL');
    await p.exited;
  }
  expect(lost).toEqual([]);
});
