/**
 * The kernel → client direction's budget (`kernels.channel_buffer_bytes`, per websocket): a client that
 * stops reading cannot make spawngate hold what its kernel says. Alone on its kernel, it pauses the
 * kernel's reads until it catches up; beside a reading client, it is closed (1008) while the reader
 * keeps receiving everything. A reading client is never cut by a burst larger than the budget.
 * Real ipykernel, real websockets through the service; the stalled client pauses its TCP socket.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type WebSocket from 'ws';
import { childReader } from '../support/child-reader';
import { connectWs, executeRequest, type Msg } from '../support/jupyter-ws';
import { IPYKERNEL, startTenantService, type TenantService } from '../gateway/tenant-service';

jest.setTimeout(300_000);

const MiB = 1024 * 1024;
// A collection before each sample, so what is measured is what spawngate holds, not garbage not yet collected.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
/** Bytes this process holds after a full collection: JS heap plus Buffers and other memory outside it. */
const retained = (): number => {
  gc();
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
};
const BUDGET = 8 * MiB;
let t: TenantService;

beforeAll(async () => {
  // A grace of 5 s: the service and both test clients share this process's event loop, and on a loaded
  // machine (two jest workers, kernels printing tens of MiB) a client that does read can lag 2 s behind.
  t = await startTenantService({ users: ['h11g-ann'], kernels: `  channel_buffer_bytes: ${BUDGET}\n  slow_client_grace_seconds: 5\n` });
  t.kernelspec('h11g-ann', 'python3', IPYKERNEL);
});

afterAll(async () => {
  await t?.close();
});

const waitUntil = async (what: string, fn: () => boolean, ms = 60_000): Promise<void> => {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};

async function launch(): Promise<string> {
  const res = await t.launch('h11g-ann', 'python3');
  expect(res.status).toBe(201);
  return res.body.id as string;
}

const connect = (id: string): Promise<WebSocket> =>
  connectWs(`ws://127.0.0.1:${t.port}/api/kernels/${id}/channels`, { Authorization: `token ${t.tokens['h11g-ann']}` });

/** Code printing `count` chunks of `chunk` bytes, each flushed as its own stream message. */
const printChunks = (count: number, chunk: number): string =>
  `import sys\nfor _ in range(${count}):\n    sys.stdout.write('x' * ${chunk})\n    sys.stdout.flush()\nprint('END')`;

interface Run {
  /** Bytes of stdout received for this request. */
  stdout: number;
  /** Resolves with the execute_reply once the kernel is idle again after it. */
  done: Promise<Msg>;
}

/** Sends an execute_request on `ws` and counts the stdout it gets back without keeping it. */
function run(ws: WebSocket, code: string, session: string): Run {
  const msgId = `run-${Math.random()}`;
  const r: Run = { stdout: 0, done: undefined as unknown as Promise<Msg> };
  r.done = new Promise<Msg>((resolve, reject) => {
    let reply: Msg | undefined;
    let idle = false;
    const onMessage = (data: Buffer): void => {
      const m = JSON.parse(data.toString()) as Msg;
      if (m.parent_header.msg_id !== msgId) return;
      if (m.header.msg_type === 'stream') r.stdout += String(m.content.text).length;
      if (m.header.msg_type === 'execute_reply') reply = m;
      if (m.header.msg_type === 'status' && m.content.execution_state === 'idle') idle = true;
      if (reply && idle) {
        ws.off('message', onMessage);
        resolve(reply);
      }
    };
    ws.on('message', onMessage);
    ws.once('close', (code) => reject(new Error(`websocket closed (${code}) before the reply`)));
  });
  ws.send(executeRequest(code, { msgId, session }));
  return r;
}

test('a client that never reads beside a reading one: spawngate stays bounded while the kernel prints 300 MiB, the reader gets all of it, the stalled one is closed', async () => {
  const id = await launch();
  const reader = childReader(`ws://127.0.0.1:${t.port}/api/kernels/${id}/channels`, t.tokens['h11g-ann']!, printChunks(300, MiB));
  await reader.attached;
  const stalled = await connect(id);
  const bridge = t.service.kernels.registry.get(id)!;
  await waitUntil('both websockets attached', () => bridge.connections === 2);
  // From here the stalled client's socket reads nothing: what spawngate sends it piles up on spawngate's side.
  stalled.pause();
  const before = retained();
  let retainedPeak = before;
  let heldPeak = 0;
  let ticks = 0;
  const sampler = setInterval(() => {
    heldPeak = Math.max(heldPeak, bridge.clientBufferedBytes);
    if (++ticks % 20 === 0) retainedPeak = Math.max(retainedPeak, retained());
  }, 10);
  try {
    reader.start();
    const r = await reader.result;
    expect(r.status).toBe('ok');
    // Every byte reached the reader ('END\n' included): the stalled client cost it nothing but a pause.
    expect(r.stdout).toBe(300 * MiB + 4);
  } finally {
    clearInterval(sampler);
  }
  // What spawngate held for its clients: the budget plus the message that crossed it, per websocket.
  expect(heldPeak).toBeLessThanOrEqual(2 * (BUDGET + 2 * MiB));
  // spawngate's process held far less than the 300 MiB an unbounded buffer would have (600 MiB measured
  // without the budget). Legitimately held: up to the budget plus a message per websocket (the reader's
  // socket fills too on a loaded machine), 32 messages in ZMQ's receive pipe, messages being encoded.
  // bench/channels/slow-client.ts prints spawngate's RSS with and without a stalled reader.
  expect(retainedPeak - before).toBeLessThan(128 * MiB);
  // The stalled client was closed; the reader left by itself.
  await waitUntil('both websockets gone', () => bridge.connections === 0);
  stalled.terminate();
});

test('a client alone on its kernel that stops reading pauses the kernel instead of piling up its output, and gets its reply once it reads again', async () => {
  const id = await launch();
  const ws = await connect(id);
  const bridge = t.service.kernels.registry.get(id)!;
  await waitUntil('the websocket attached', () => bridge.connections === 1);
  const r = run(ws, printChunks(100, MiB), 'alone');
  ws.pause();
  let heldPeak = 0;
  const sampler = setInterval(() => (heldPeak = Math.max(heldPeak, bridge.clientBufferedBytes)), 10);
  try {
    await waitUntil('the kernel reads paused', () => bridge.isReadingPaused);
    await new Promise((res) => setTimeout(res, 3000));
    expect(bridge.isReadingPaused).toBe(true);
    // Alone, the client is not closed: it is the one the kernel waits for.
    expect(bridge.connections).toBe(1);
    expect(heldPeak).toBeLessThanOrEqual(BUDGET + 2 * MiB);
  } finally {
    clearInterval(sampler);
  }
  ws.resume();
  const reply = await r.done;
  expect(reply.content.status).toBe('ok');
  expect(bridge.isReadingPaused).toBe(false);
  ws.close();
});

test('a burst larger than the budget (20 MiB at once, and 20 × 1 MiB) cuts neither of two reading clients', async () => {
  const id = await launch();
  const a = await connect(id);
  const b = await connect(id);
  const bridge = t.service.kernels.registry.get(id)!;
  await waitUntil('both websockets attached', () => bridge.connections === 2);
  for (const code of [`print('x' * ${20 * MiB})`, printChunks(20, MiB)]) {
    const ra = run(a, code, 'a');
    const rb = run(b, code, 'b-watch');
    // Both run it, so each also receives the other's output on iopub: 40 MiB per client per round.
    await Promise.all([ra.done, rb.done]);
    expect(ra.stdout).toBeGreaterThanOrEqual(20 * MiB);
    expect(bridge.connections).toBe(2);
  }
  a.close();
  b.close();
});
