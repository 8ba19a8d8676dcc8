/**
 * The websocket bridge's bounds (issue 11): a message larger than `kernels.max_frame_bytes` closes the
 * websocket with 1009, as Jupyter Server (tornado) does; a kernel that stops reading makes the bridge
 * stop reading its websockets once `kernels.channel_buffer_bytes` are held, so the rest waits at the
 * client (TCP backpressure) instead of in spawngate, and traffic resumes when the kernel reads again.
 */
import { randomUUID } from 'node:crypto';
import type WebSocket from 'ws';
import { connectWs, execute } from '../support/jupyter-ws';
import { IPYKERNEL, startTenantService, type TenantService } from '../gateway/tenant-service';

jest.setTimeout(120_000);

const MiB = 1024 * 1024;
const BUDGET = 8 * MiB;
let t: TenantService;

beforeAll(async () => {
  t = await startTenantService({ users: ['alice'], kernels: `  max_frame_bytes: ${2 * MiB}\n  channel_buffer_bytes: ${BUDGET}\n` });
  t.kernelspec('alice', 'python3', IPYKERNEL);
});

afterAll(async () => {
  await t?.close();
});

async function kernelSocket(): Promise<{ id: string; ws: WebSocket }> {
  const res = await t.launch('alice', 'python3');
  expect(res.status).toBe(201);
  const id = res.body.id as string;
  const ws = await connectWs(`ws://127.0.0.1:${t.port}/api/kernels/${id}/channels`, { Authorization: `token ${t.tokens.alice}` });
  return { id, ws };
}

/** A shell message the kernel reads and ignores (unknown type), carrying `bytes` of payload. */
function filler(bytes: number): string {
  return JSON.stringify({
    header: { msg_id: randomUUID(), msg_type: 'spawngate_filler', username: 'alice', session: 'filler', date: new Date().toISOString(), version: '5.3' },
    parent_header: {},
    metadata: {},
    content: { data: 'x'.repeat(bytes) },
    channel: 'shell',
  });
}

const waitUntil = async (what: string, fn: () => boolean, ms = 30_000): Promise<void> => {
  const deadline = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

test('a message larger than kernels.max_frame_bytes closes the websocket with 1009; one below it is relayed', async () => {
  const { ws } = await kernelSocket();
  expect((await execute(ws, `print(len("${'y'.repeat(MiB)}"))`)).stdout.trim()).toBe(String(MiB));
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  ws.send(filler(3 * MiB));
  expect(await closed).toBe(1009);
});

test('a stalled kernel does not grow the bridge past its byte budget: the websocket is paused, then resumes', async () => {
  const { id, ws } = await kernelSocket();
  const pid = Number((await execute(ws, 'import os; print(os.getpid())')).stdout.trim());
  process.kill(pid, 'SIGSTOP');
  try {
    const frame = filler(MiB);
    for (let i = 0; i < 100; i++) ws.send(frame);
    const bridge = t.service.kernels.registry.get(id)!;
    await waitUntil('backpressure', () => bridge.isBackpressured);
    // Let whatever is in flight settle; the bridge must not take more than its budget (+ one message).
    await new Promise((r) => setTimeout(r, 1500));
    expect(bridge.bufferedBytes).toBeLessThanOrEqual(BUDGET + 2 * MiB);
    // The rest stays at the client: its socket could not send it (about 100 MiB minus budget and OS buffers).
    expect(ws.bufferedAmount).toBeGreaterThan(50 * MiB);
  } finally {
    process.kill(pid, 'SIGCONT');
  }
  await waitUntil('the client to drain', () => ws.bufferedAmount === 0, 60_000);
  // The client's last bytes can still be in the bridge's budget on their way to the kernel: the pause
  // ends once they are delivered, not at the instant the client's socket empties.
  await waitUntil('the bridge to resume', () => !t.service.kernels.registry.get(id)!.isBackpressured, 30_000);
  // The kernel answers again through the same websocket.
  expect((await execute(ws, 'print(6 * 7)', 60_000)).stdout.trim()).toBe('42');
  ws.close();
});
