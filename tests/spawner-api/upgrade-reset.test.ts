/**
 * A client that resets its connection while its websocket upgrade is still being authenticated must not
 * take spawngate down: between Node's 'upgrade' event (which drops the HTTP server's own socket error
 * handler) and `ws` taking the socket, the kernel-channels handler is the socket's only owner. Checked
 * on a plain `http.Server` and behind the raw-target listener (whose wrapper re-emits the TCP socket's
 * errors), as `compose/service.ts` serves it. The token lookup is held open by the test, so the reset
 * lands inside that window every time; the kernel service is never reached (the lookup refuses).
 * Without a listener for that window the 'error' is uncaught, and Jest fails this suite with it.
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import type { KernelService } from '../../src/kernels';
import type { Queryable } from '../../src/db';
import { createKernelChannelsHandler } from '../../src/spawner-api/gateway/kernel-channels';
import { unauthorized } from '../../src/spawner-api/errors';
import { createRawTargetListener } from '../../src/spawner-api/raw-target';
import { testLogger } from '../support/logger';

const KERNEL = '0f0e0d0c-0b0a-4908-8706-050403020100';
const upgradeRequest = (token: string) =>
  `GET /api/kernels/${KERNEL}/channels HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
  `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nAuthorization: token ${token}\r\n\r\n`;

/** Everything the server answers on a fresh connection to `bytes` (the connection half-closed after). */
function exchange(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', reject);
    s.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

describe.each([
  ['a plain http.Server', false],
  ['the raw-target listener', true],
])('a connection reset during a slow upgrade authentication, behind %s', (_label, rawTarget) => {
  let server: http.Server;
  let listening: net.Server;
  let port: number;
  let channels: ReturnType<typeof createKernelChannelsHandler>;
  const serverSockets: net.Socket[] = [];
  /** Lookups of `slow` wait for this test's release; every other token is refused at once. */
  let lookupStarted: () => void = () => undefined;
  let releaseLookup: Promise<void> = Promise.resolve();

  beforeAll(async () => {
    const db: Queryable = {
      query: () => Promise.reject(new Error('the database is not reached in these tests')),
    } as unknown as Queryable;
    // Never reached: the token lookup refuses first. Only its frame limit is read at construction.
    const kernels = {
      maxFrameBytes: undefined,
      forChannels: () => Promise.reject(new Error('not reached')),
    } as unknown as KernelService;
    channels = createKernelChannelsHandler({
      kernels,
      db,
      logger: testLogger,
      resolveIdentity: async (token) => {
        if (token === 'slow') {
          lookupStarted();
          await releaseLookup;
        }
        throw unauthorized();
      },
    });
    server = http.createServer((_req, res) => res.end('alive'));
    server.on('upgrade', (req, socket, head) => void channels.handleUpgrade(req, socket, head));
    listening = rawTarget ? createRawTargetListener(server) : server;
    listening.on('connection', (s: net.Socket) => serverSockets.push(s));
    await new Promise<void>((r) => listening.listen(0, '127.0.0.1', () => r()));
    port = (listening.address() as AddressInfo).port;
  });

  afterAll(async () => {
    channels.close();
    await new Promise<void>((r) => listening.close(() => r()));
  });

  test('raises no unhandled error, and the next request and upgrade are answered', async () => {
    let release!: () => void;
    releaseLookup = new Promise<void>((r) => (release = r));
    const started = new Promise<void>((r) => (lookupStarted = r));
    const client = net.connect(port, '127.0.0.1', () => client.write(upgradeRequest('slow')));
    client.on('error', () => undefined);
    await started;
    const serverSide = serverSockets.at(-1)!;
    // 'close' only: a test's own 'error' listener on the socket would be the very handler under test.
    const closedWithError = new Promise<boolean>((r) => serverSide.once('close', r));
    client.resetAndDestroy();
    // The reset reached the server while the lookup was still pending (else this test proves nothing).
    expect(await closedWithError).toBe(true);
    await new Promise((r) => setTimeout(r, 100));
    release();
    await new Promise((r) => setTimeout(r, 100));

    expect(await exchange(port, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')).toMatch(/^HTTP\/1\.1 200 [^]*alive$/);
    expect(await exchange(port, upgradeRequest('wrong'))).toMatch(/^HTTP\/1\.1 401 /);
  });
});
