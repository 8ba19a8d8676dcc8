/**
 * What the raw-target listener (src/spawner-api/raw-target) costs: the same trivial HTTP handler served
 * by Node's own listener and through the listener, side by side in one run — keep-alive GETs with a
 * raw UTF-8 `?user=` (the listener only; Node alone refuses them with 400) and plain ones, POSTs with a
 * 64 KiB body, and websocket echo round trips (handed the TCP socket itself, as spawngate's kernel
 * channels are).
 * Rounds alternate between the two servers so machine noise hits both alike.
 *
 *   npx tsx bench/raw-target.ts [--requests 4000] [--rounds 3]
 */
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { createRawTargetListener, upgradedSocket } from '../src/spawner-api/raw-target';

const arg = (name: string, dflt: number) => (process.argv.includes(name) ? Number(process.argv[process.argv.indexOf(name) + 1]) : dflt);
const requests = arg('--requests', 4000);
const rounds = arg('--rounds', 3);
const body = Buffer.alloc(64 * 1024, 'x');

function makeServer(): http.Server {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end(req.url));
  });
  const wss = new WebSocketServer({ noServer: true });
  // As spawngate's kernel channels do: the websocket gets the TCP socket itself (`upgradedSocket`).
  server.on('upgrade', (req, socket, head) => {
    const up = upgradedSocket(socket, head);
    wss.handleUpgrade(req, up.socket, up.head, (ws) => ws.on('message', (m, binary) => ws.send(m, { binary })));
  });
  return server;
}

async function listen(withListener: boolean): Promise<{ port: number; close: () => Promise<void> }> {
  const server = makeServer();
  const target: net.Server = withListener ? createRawTargetListener(server) : server;
  await new Promise<void>((r) => target.listen(0, '127.0.0.1', () => r()));
  server.keepAliveTimeout = 60_000;
  return { port: (target.address() as AddressInfo).port, close: () => new Promise<void>((r) => target.close(() => r())) };
}

/** Sequential requests on one keep-alive connection, written raw so the target goes out unencoded. */
async function requestsPerSecond(port: number, requestFor: (i: number) => Buffer): Promise<number> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  let pending: (() => void) | undefined;
  let buffered = '';
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => {
    buffered += d;
    // One response ends where its Content-Length says; the handler's responses are small.
    for (;;) {
      const head = buffered.indexOf('\r\n\r\n');
      if (head < 0) return;
      const length = Number(/content-length: (\d+)/i.exec(buffered.slice(0, head))?.[1] ?? 0);
      if (buffered.length < head + 4 + length) return;
      if (!buffered.startsWith('HTTP/1.1 200')) throw new Error(`unexpected answer: ${buffered.slice(0, 40)}`);
      buffered = buffered.slice(head + 4 + length);
      pending?.();
    }
  });
  const started = process.hrtime.bigint();
  for (let i = 0; i < requests; i++) {
    await new Promise<void>((resolve) => {
      pending = resolve;
      socket.write(requestFor(i));
    });
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  socket.destroy();
  return requests / seconds;
}

async function wsRoundTripsPerSecond(port: number): Promise<number> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws?user=x`);
  await new Promise((r, j) => ws.once('open', r).once('error', j));
  const payload = Buffer.alloc(1024, 'y');
  const started = process.hrtime.bigint();
  for (let i = 0; i < requests; i++) {
    await new Promise<void>((resolve) => {
      ws.once('message', () => resolve());
      ws.send(payload);
    });
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  ws.close();
  return requests / seconds;
}

const cases: Array<{ name: string; run: (port: number) => Promise<number>; nodeAlone: boolean }> = [
  { name: 'GET, plain ASCII target', run: (p) => requestsPerSecond(p, (i) => Buffer.from(`GET /api/kernelspecs?user=alice&i=${i} HTTP/1.1\r\nHost: x\r\n\r\n`)), nodeAlone: true },
  { name: 'GET, raw UTF-8 ?user=zoë-łódź', run: (p) => requestsPerSecond(p, (i) => Buffer.from(`GET /api/kernelspecs?user=zoë-łódź&i=${i} HTTP/1.1\r\nHost: x\r\n\r\n`)), nodeAlone: false },
  {
    name: 'POST, 64 KiB body',
    run: (p) => requestsPerSecond(p, (i) => Buffer.concat([Buffer.from(`POST /api/kernels?i=${i} HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`), body])),
    nodeAlone: true,
  },
  { name: 'websocket 1 KiB echo', run: wsRoundTripsPerSecond, nodeAlone: true },
];

async function main(): Promise<void> {
  console.log(`raw-target listener vs Node's own listener: ${requests} sequential operations per case, best of ${rounds} rounds (per second)`);
  console.log(['case'.padEnd(34), "Node's listener".padStart(16), 'raw-target'.padStart(12), 'ratio'.padStart(7)].join(' '));
  for (const c of cases) {
    const best = { node: 0, raw: 0 };
    for (let r = 0; r < rounds; r++) {
      for (const withListener of [false, true]) {
        if (!withListener && !c.nodeAlone) continue;
        const s = await listen(withListener);
        const rate = await c.run(s.port);
        await s.close();
        if (withListener) best.raw = Math.max(best.raw, rate);
        else best.node = Math.max(best.node, rate);
      }
    }
    const node = c.nodeAlone ? best.node.toFixed(0) : '400 (refused)';
    const ratio = c.nodeAlone ? (best.raw / best.node).toFixed(2) : '-';
    console.log([c.name.padEnd(34), node.padStart(16), best.raw.toFixed(0).padStart(12), ratio.padStart(7)].join(' '));
  }
}

void main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
