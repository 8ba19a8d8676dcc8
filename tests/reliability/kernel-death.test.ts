/**
 * A kernel process that dies. An API process (`serve --no-workers`) bridges the websocket, a separate
 * worker launched the kernel (production layout, Postgres + Redis). SIGKILL of the ipykernel pid: the
 * websocket client receives an iopub status `dead` within a few seconds, the kernel model says `dead`,
 * and `POST /api/kernels/{id}/restart` brings it back: code runs again, over the same websocket and a
 * new one, with exactly one process for the kernel.
 */
import { alive, Cluster, sleep, waitFor } from './helpers';

jest.setTimeout(120_000);

let c: Cluster;

beforeAll(async () => {
  c = await Cluster.create({ redis: true });
});

afterAll(async () => {
  await c?.close();
});

test('a killed kernel process: iopub dead, model dead, restart brings it back', async () => {
  const api = await c.start('api');
  await c.start('worker');
  const id = await c.launch(api);
  const ws = await c.connect(api, id);
  try {
    expect((await ws.execute('x = 1; print("ok")')).stdout).toBe('ok\n');
    const [record] = c.records(id);
    expect(c.kernelProcesses(id).map((p) => p.pid)).toEqual([record!.pid]);

    const seen = ws.messages.length;
    process.kill(record!.pid, 'SIGKILL');
    const ms = await ws.waitForStatus('dead', 10_000, seen);
    expect(ms).toBeLessThan(10_000);
    expect(ws.closed).toBe(false);

    const model = await c.api<{ execution_state: string }>(api, 'GET', `/api/kernels/${id}`);
    expect(model.status).toBe(200);
    expect(model.body.execution_state).toBe('dead');
    const listed = await c.api<Array<{ id: string; execution_state: string }>>(api, 'GET', '/api/kernels');
    expect(listed.body).toEqual([expect.objectContaining({ id, execution_state: 'dead' })]);

    const restarted = await c.api<{ id: string; execution_state: string }>(api, 'POST', `/api/kernels/${id}/restart`, {}, { timeoutMs: 60_000 });
    expect({ status: restarted.status, body: restarted.body }).toMatchObject({ status: 200 });
    expect(restarted.body.id).toBe(id);
    expect(restarted.body.execution_state).not.toBe('dead');

    // Code runs again on the same websocket: a fresh interpreter.
    await waitFor('the restarted kernel to run code', async () => (await ws.execute("print('x' in globals(), 6*7)", 5_000)).stdout === 'False 42\n', 30_000, 500);
    const fresh = await c.connect(api, id);
    try {
      expect((await fresh.execute('print(1 + 1)')).stdout).toBe('2\n');
    } finally {
      fresh.close();
    }

    // One process, a new one; the model is alive again and stays so (the heartbeat came back).
    await sleep(4_000);
    const procs = c.kernelProcesses(id);
    expect(procs).toHaveLength(1);
    expect(procs[0]!.pid).not.toBe(record!.pid);
    expect(alive(record!.pid)).toBe(false);
    const after = await c.api<{ execution_state: string }>(api, 'GET', `/api/kernels/${id}`);
    expect(after.body.execution_state).toBe('idle');
    expect((await ws.execute('print("still here")')).stdout).toBe('still here\n');
    console.log(`iopub 'dead' reached the client ${ms} ms after SIGKILL`);
  } finally {
    ws.close();
  }
});
