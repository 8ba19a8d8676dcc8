/**
 * The bridge against a real ipykernel (Debian's /usr/bin/python3, ipykernel 6.17) over real
 * websockets: execution and outputs, several clients on one kernel, reconnecting sessions, stdin,
 * interrupts, binary buffers, the v1 subprotocol and the state kept for the kernel model.
 */
import { randomUUID } from 'node:crypto';
import { WebSocket } from 'ws';
import {
  deserializeMsgFromWsV1,
  serializeMsgToWsV1,
  V1_SUBPROTOCOL,
  type ExecutionState,
  type KernelClient,
} from '../../src/kernels/channels';
import {
  memoryLogger,
  startBridgeServer,
  startClient,
  TestClient,
  type BridgeServer,
  type KernelProcess,
} from './helpers';

let kernel: KernelProcess;
let client: KernelClient;
let server: BridgeServer;
const clients: TestClient[] = [];

async function connect(opts: Parameters<typeof TestClient.connect>[1] = {}): Promise<TestClient> {
  const c = await TestClient.connect(server.url, opts);
  clients.push(c);
  return c;
}

beforeAll(async () => {
  ({ kernel, client } = await startClient({ logger: memoryLogger().logger }));
  server = await startBridgeServer(client);
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()));
});

afterAll(async () => {
  await server?.close();
  await client?.close();
  await kernel?.kill();
});

test('kernel_info answers (launch readiness) and the state becomes idle', async () => {
  const info = await client.kernelInfo(5000);
  expect(info).toMatchObject({ status: 'ok', implementation: 'ipython', language_info: { name: 'python' } });
  expect(info.protocol_version).toMatch(/^5\./);
  await waitUntil(() => client.executionState === 'idle');
});

test('execute over a websocket: stream and execute_result outputs, reply, busy/idle', async () => {
  const c = await connect();
  expect(client.connections).toBe(1);
  const before = client.lastActivity.getTime();
  const id = c.execute('print("hello from the kernel"); 6*7');
  const { reply, outputs } = await c.finished(id);
  expect(reply.content.status).toBe('ok');
  expect(reply.msg_type).toBe('execute_reply'); // jupyter_server's top-level keys
  expect(reply.header.session).toBeDefined();
  const types = outputs.map((m) => m.header.msg_type);
  expect(types).toEqual(['status', 'execute_input', 'stream', 'execute_result', 'status']);
  expect(outputs.find((m) => m.header.msg_type === 'stream')!.content).toEqual({
    name: 'stdout',
    text: 'hello from the kernel\n',
  });
  expect(outputs.find((m) => m.header.msg_type === 'execute_result')!.content.data['text/plain']).toBe('42');
  expect(client.lastActivity.getTime()).toBeGreaterThanOrEqual(before);
  expect(client.executionState).toBe('idle');
});

test('two websockets on one kernel: both see iopub, only the asker gets the reply', async () => {
  const a = await connect();
  const b = await connect();
  expect(client.connections).toBe(2);
  const id = a.execute('"from a"');
  await a.finished(id);
  const result = await b.waitFor(
    (m) => m.parent_header.msg_id === id && m.header.msg_type === 'execute_result',
  );
  expect(result.content.data['text/plain']).toBe("'from a'");
  await b.waitFor((m) => m.parent_header.msg_id === id && m.content.execution_state === 'idle');
  const idB = b.send('kernel_info_request', {});
  await b.waitFor((m) => m.parent_header.msg_id === idB && m.channel === 'shell');
  await sleep(200);
  expect(b.childrenOf(id).filter((m) => m.channel === 'shell')).toEqual([]);
  expect(a.childrenOf(idB).filter((m) => m.channel === 'shell')).toEqual([]);
});

test('reconnect with the same session id: replies that arrived meanwhile are replayed, routing continues', async () => {
  const session = randomUUID();
  const first = await connect({ sessionId: session });
  const id = first.execute('import time; time.sleep(0.8); print("late output")');
  await first.waitFor((m) => m.parent_header.msg_id === id && m.header.msg_type === 'execute_input');
  await first.close();
  await waitUntil(() => client.connections === 0);
  await sleep(1200); // the reply and the output arrive while nobody is connected
  const second = await connect({ sessionId: session });
  const { reply, outputs } = await second.finished(id);
  expect(reply.content.status).toBe('ok');
  expect(outputs.find((m) => m.header.msg_type === 'stream')!.content.text).toBe('late output\n');
  const id2 = second.execute('1+2');
  expect((await second.finished(id2)).reply.content.status).toBe('ok');
});

test('a newer websocket with the same session id replaces a stale one (as jupyter_server)', async () => {
  const session = randomUUID();
  const stale = await connect({ sessionId: session });
  const fresh = await connect({ sessionId: session });
  await stale.closed;
  expect(client.connections).toBe(1);
  const id = fresh.execute('"still here"');
  expect((await fresh.finished(id)).reply.content.status).toBe('ok');
});

test('no session_id in the URL (jupyter_server 1.23 gateway client): routing follows the header session', async () => {
  const a = await connect({ sessionId: null });
  const b = await connect({ sessionId: null });
  const id = a.execute('"routed"');
  expect((await a.finished(id)).reply.content.status).toBe('ok');
  await b.waitFor((m) => m.parent_header.msg_id === id && m.content.execution_state === 'idle');
  expect(b.childrenOf(id).filter((m) => m.channel === 'shell')).toEqual([]);
});

test('stdin: input() sends input_request to the asker only, input_reply completes the cell', async () => {
  const a = await connect();
  const b = await connect();
  const id = a.execute('name = input("who? "); print("hi " + name)');
  const req = await a.waitFor((m) => m.channel === 'stdin' && m.header.msg_type === 'input_request');
  expect(req.content.prompt).toBe('who? ');
  a.send('input_reply', { value: 'ada' }, 'stdin', undefined, req.header);
  const { outputs } = await a.finished(id);
  expect(outputs.find((m) => m.header.msg_type === 'stream')!.content.text).toBe('hi ada\n');
  expect(b.messages.filter((m) => m.channel === 'stdin')).toEqual([]);
});

test('interrupt_request on control interrupts time.sleep(60)', async () => {
  const c = await connect();
  const id = c.execute('import time; time.sleep(60)');
  await c.waitFor((m) => m.parent_header.msg_id === id && m.header.msg_type === 'execute_input');
  await waitUntil(() => client.executionState === 'busy');
  await sleep(200);
  const t0 = Date.now();
  await client.interrupt(5000);
  const { reply } = await c.finished(id, 10_000);
  expect(reply.content).toMatchObject({ status: 'error', ename: 'KeyboardInterrupt' });
  expect(Date.now() - t0).toBeLessThan(5000);
  await settle(c);
});

test('interrupt by signal (interrupt_mode "signal"): SIGINT to the kernel process', async () => {
  const c = await connect();
  const id = c.execute('import time; time.sleep(60)');
  await c.waitFor((m) => m.parent_header.msg_id === id && m.header.msg_type === 'execute_input');
  await sleep(200);
  process.kill(kernel.pid, 'SIGINT');
  const { reply } = await c.finished(id, 10_000);
  expect(reply.content).toMatchObject({ status: 'error', ename: 'KeyboardInterrupt' });
  await settle(c);
});

test('a websocket client can interrupt through the control channel too', async () => {
  const a = await connect();
  const id = a.execute('import time; time.sleep(60)');
  await a.waitFor((m) => m.parent_header.msg_id === id && m.header.msg_type === 'execute_input');
  await sleep(200);
  const intId = a.send('interrupt_request', {}, 'control');
  await a.waitFor(
    (m) =>
      m.channel === 'control' && m.parent_header.msg_id === intId && m.header.msg_type === 'interrupt_reply',
  );
  expect((await a.finished(id, 10_000)).reply.content.ename).toBe('KeyboardInterrupt');
  await settle(a);
});

test('binary frames: a comm message with buffers round-trips both ways', async () => {
  const c = await connect();
  const setup = c.execute(
    [
      'def _echo_target(comm, open_msg):',
      '    @comm.on_msg',
      '    def _recv(msg):',
      '        comm.send({"n": len(msg["buffers"])}, buffers=[bytes(b)[::-1] for b in msg["buffers"]])',
      'get_ipython().kernel.comm_manager.register_target("echo", _echo_target)',
    ].join('\n'),
  );
  expect((await c.finished(setup)).reply.content.status).toBe('ok');
  const commId = randomUUID();
  const open = c.send('comm_open', { comm_id: commId, target_name: 'echo', data: {} });
  await c.waitFor((m) => m.parent_header.msg_id === open && m.content.execution_state === 'idle');
  const payload = [Buffer.from([0, 1, 2, 250, 255]), Buffer.from('binary ✓', 'utf8')];
  const msgId = c.send('comm_msg', { comm_id: commId, data: { hello: 1 } }, 'shell', payload);
  const echo = await c.waitFor(
    (m) => m.channel === 'iopub' && m.header.msg_type === 'comm_msg' && m.parent_header.msg_id === msgId,
  );
  expect(echo.binary).toBe(true);
  expect(echo.content.data).toEqual({ n: 2 });
  expect(echo.buffers!.map((b) => b.toString('hex'))).toEqual(
    payload.map((b) => Buffer.from(b).reverse().toString('hex')),
  );
});

test('v1 subprotocol (v1.kernel.websocket.jupyter.org): frames pass through without JSON', async () => {
  const ws = new WebSocket(`${server.url}?session_id=${randomUUID()}`, [V1_SUBPROTOCOL], {
    perMessageDeflate: false,
  });
  const received: { channel: string; parts: Buffer[] }[] = [];
  ws.on('message', (data: Buffer) => received.push(deserializeMsgFromWsV1(data)));
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  expect(ws.protocol).toBe(V1_SUBPROTOCOL);
  const msgId = randomUUID();
  const header = {
    msg_id: msgId,
    msg_type: 'execute_request',
    username: 't',
    session: randomUUID(),
    date: new Date().toISOString(),
    version: '5.3',
  };
  const content = {
    code: '10*10',
    silent: false,
    store_history: false,
    user_expressions: {},
    allow_stdin: false,
  };
  ws.send(
    serializeMsgToWsV1(
      'shell',
      [header, {}, {}, content].map((p) => Buffer.from(JSON.stringify(p))),
    ),
  );
  await waitUntil(() => received.some((r) => r.channel === 'shell'));
  const parsed = received.map((r) => ({
    channel: r.channel,
    header: JSON.parse(r.parts[0]!.toString()),
    parent: JSON.parse(r.parts[1]!.toString()),
    content: JSON.parse(r.parts[3]!.toString()),
  }));
  const result = parsed.find((p) => p.header.msg_type === 'execute_result' && p.parent.msg_id === msgId);
  expect(result?.channel).toBe('iopub');
  expect(result?.content.data['text/plain']).toBe('100');
  expect(parsed.find((p) => p.channel === 'shell')?.header.msg_type).toBe('execute_reply');
  ws.close();
  await new Promise((r) => ws.once('close', r));
});

test('execution state listeners see busy and idle; detach stops relaying', async () => {
  const states: ExecutionState[] = [];
  const off = client.onExecutionState((s) => states.push(s));
  const c = await connect();
  const id = c.execute('1');
  await c.finished(id);
  off();
  expect(states).toEqual(expect.arrayContaining(['busy', 'idle']));
  expect(client.connections).toBe(1);
  await c.close();
  await waitUntil(() => client.connections === 0);
});

/**
 * After an interrupted cell ipykernel aborts execute requests until its abort flag is cleared on
 * its event loop; wait for that so the next test's cells are not 'aborted'.
 */
async function settle(c: TestClient): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const id = c.execute('None');
    if ((await c.finished(id)).reply.content.status === 'ok') return;
    await sleep(50);
  }
  throw new Error('kernel kept aborting requests');
}

async function waitUntil(pred: () => boolean, timeoutMs = 10_000): Promise<void> {
  const t0 = Date.now();
  while (!pred()) {
    if (Date.now() - t0 > timeoutMs) throw new Error('condition not met in time');
    await sleep(20);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
