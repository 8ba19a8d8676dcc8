/**
 * Kernel lifecycle through the bridge: forged ZMQ messages are dropped, a killed kernel is
 * reported dead by the heartbeat (and comes back after a restart on the same connection info),
 * shutdown_request, synthesized status messages, timeouts and close().
 */
import { randomUUID } from 'node:crypto';
import { Publisher, Router } from 'zeromq';
import {
  channelAddress,
  deserializeRaw,
  encodeMessage,
  KernelClient,
  KernelClientClosedError,
  KernelTimeoutError,
  newHeader,
  serializeRaw,
  Signer,
  type KernelConnectionInfo,
} from '../../src/kernels/channels';
import {
  memoryLogger,
  newConnectionInfo,
  startBridgeServer,
  startClient,
  startKernel,
  TestClient,
  type BridgeServer,
} from './helpers';

const cleanups: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function bridge(client: KernelClient): Promise<BridgeServer> {
  const server = await startBridgeServer(client);
  cleanups.push(() => server.close());
  return server;
}

async function connect(server: BridgeServer): Promise<TestClient> {
  const c = await TestClient.connect(server.url);
  cleanups.push(() => c.close());
  return c;
}

/** A fake kernel: ROUTER on shell, PUB on iopub, signing with `info.key` (or a forger's key). */
async function fakeKernel(info: KernelConnectionInfo) {
  const shell = new Router({ linger: 0 });
  const iopub = new Publisher({ linger: 0 });
  await shell.bind(channelAddress(info, 'shell'));
  await iopub.bind(channelAddress(info, 'iopub'));
  cleanups.push(() => {
    shell.close();
    iopub.close();
  });
  const good = new Signer(info.key);
  const forger = new Signer('not-the-key');
  const message = (msgType: string, content: Record<string, unknown>, parent: Record<string, unknown> = {}) =>
    encodeMessage({
      header: newHeader(msgType, 'fake-kernel', randomUUID()),
      parent_header: parent,
      metadata: {},
      content,
    });
  return { shell, iopub, good, forger, message };
}

test('messages with a bad HMAC from the ZMQ side are dropped and logged at warn, without the key', async () => {
  const info = await newConnectionInfo();
  const fake = await fakeKernel(info);
  const { logger, lines } = memoryLogger();
  const client = new KernelClient({ connection: info, heartbeat: false, logger });
  cleanups.push(() => client.close());
  const c = await connect(await bridge(client));

  // iopub: publish forged + genuine pairs until the subscription is live and the genuine one is seen.
  let publishing = true;
  const pump = (async () => {
    while (publishing) {
      await fake.iopub.send(
        serializeRaw(fake.message('stream', { name: 'stdout', text: 'forged' }), fake.forger),
      );
      await fake.iopub.send(
        serializeRaw(fake.message('stream', { name: 'stdout', text: 'genuine' }), fake.good),
      );
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  await c.waitFor((m) => m.content.text === 'genuine');
  publishing = false;
  await pump;

  // shell: our request reaches the fake kernel correctly signed; a forged reply is dropped, the real one relayed.
  const reqId = c.send('kernel_info_request', {});
  const [identity, ...frames] = await fake.shell.receive();
  const request = deserializeRaw(frames, fake.good); // throws if our signature were wrong
  expect(JSON.parse(request.header.toString()).msg_id).toBe(reqId);
  const parent = JSON.parse(request.header.toString());
  await fake.shell.send([
    identity!,
    ...serializeRaw(fake.message('kernel_info_reply', { status: 'forged' }, parent), fake.forger),
  ]);
  await fake.shell.send([
    identity!,
    ...serializeRaw(fake.message('kernel_info_reply', { status: 'ok' }, parent), fake.good),
  ]);
  const reply = await c.waitFor((m) => m.channel === 'shell' && m.parent_header.msg_id === reqId);
  expect(reply.content.status).toBe('ok');
  await new Promise((r) => setTimeout(r, 100));

  expect(c.messages.filter((m) => m.content.text === 'forged' || m.content.status === 'forged')).toEqual([]);
  const warnings = lines
    .map((l) => JSON.parse(l))
    .filter((r) => r.level === 'warn' && r.reason === 'bad-signature');
  expect(warnings.length).toBeGreaterThanOrEqual(2);
  expect(warnings.map((w) => w.channel)).toEqual(expect.arrayContaining(['iopub', 'shell']));
  expect(lines.join('\n')).not.toContain(info.key);
});

test('kernel killed: heartbeat reports dead within a few seconds, websockets get iopub status dead; a restart on the same connection info revives it', async () => {
  const { kernel, client } = await startClient({
    heartbeat: { intervalMs: 500, missedBeats: 3 },
    logger: memoryLogger().logger,
  });
  cleanups.push(
    () => kernel.kill(),
    () => client.close(),
  );
  const server = await bridge(client);
  const c = await connect(server);
  const dead = new Promise<number>((resolve) => client.onDead(() => resolve(Date.now())));

  const killedAt = Date.now();
  process.kill(kernel.pid, 'SIGKILL');
  const deadAt = await dead;
  expect(deadAt - killedAt).toBeLessThan(4000);
  expect(client.isDead).toBe(true);
  expect(client.executionState).toBe('dead');
  const status = await c.waitFor(
    (m) => m.channel === 'iopub' && m.header.msg_type === 'status' && m.content.execution_state === 'dead',
  );
  expect(status.parent_header).toEqual({});
  // A websocket opened on a dead kernel learns it at once.
  const late = await connect(server);
  await late.waitFor((m) => m.content.execution_state === 'dead', 2000);

  // Restart: new process, same ports and key; the same client and websockets carry on.
  client.broadcastStatus('restarting');
  await c.waitFor((m) => m.content.execution_state === 'restarting');
  const again = await startKernel(kernel.info);
  cleanups.push(() => again.kill());
  await client.kernelInfo(30_000);
  const alive = Date.now();
  while (client.isDead && Date.now() - alive < 5000) await new Promise((r) => setTimeout(r, 50));
  expect(client.isDead).toBe(false);
  const id = c.execute('"back"');
  expect((await c.finished(id)).reply.content.status).toBe('ok');
  expect(client.executionState).toBe('idle');
});

test('shutdown_request on control: the kernel replies and exits', async () => {
  const { kernel, client } = await startClient({ logger: memoryLogger().logger });
  cleanups.push(
    () => kernel.kill(),
    () => client.close(),
  );
  const c = await connect(await bridge(client));
  const reply = await client.shutdown({ restart: false, timeoutMs: 10_000 });
  expect(reply).toMatchObject({ status: 'ok', restart: false });
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([
    kernel.exited,
    new Promise((r) => (timer = setTimeout(() => r('still running'), 20_000))),
  ]);
  clearTimeout(timer);
  expect(code).toBe(0);
  // ipykernel broadcasts its shutdown_reply on iopub too.
  await c.waitFor((m) => m.channel === 'iopub' && m.header.msg_type === 'shutdown_reply', 5000);
});

test('broadcastStatus reaches every websocket; timeouts and close() fail pending calls with named errors', async () => {
  // Nothing listens on these ports.
  const info = await newConnectionInfo();
  const client = new KernelClient({
    connection: info,
    heartbeat: { intervalMs: 200, missedBeats: 2 },
    logger: memoryLogger().logger,
  });
  cleanups.push(() => client.close());
  const server = await bridge(client);
  const a = await connect(server);
  const b = await connect(server);
  client.broadcastStatus('restarting');
  for (const c of [a, b]) {
    const m = await c.waitFor((x) => x.header.msg_type === 'status');
    expect(m).toMatchObject({
      channel: 'iopub',
      msg_type: 'status',
      content: { execution_state: 'restarting' },
      buffers: [],
    });
  }
  expect(client.executionState).toBe('restarting');

  await expect(client.kernelInfo(300)).rejects.toBeInstanceOf(KernelTimeoutError);
  await expect(client.interrupt(200)).rejects.toThrow(/did not answer interrupt_request within 200 ms/);
  const pending = client.shutdown({ timeoutMs: 60_000 });
  await client.close();
  await expect(pending).rejects.toBeInstanceOf(KernelClientClosedError);
  await Promise.all([a.closed, b.closed]);
  expect(a.ws.readyState).toBe(a.ws.CLOSED);
  await expect(client.kernelInfo(100)).rejects.toBeInstanceOf(KernelClientClosedError);
  await client.close(); // idempotent
});
