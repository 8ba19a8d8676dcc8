/**
 * Postgres down. A TCP proxy (node `net`, in this test) sits between one `spawngate serve` and the
 * local Postgres. Closing it (every connection cut, new ones refused) is Postgres going away: API calls
 * that need the database answer 503 with a message naming the database within a few seconds, /readyz
 * is 503, a kernel's open websocket keeps working. Reopening it: spawngate recovers without a restart.
 *
 * A second test freezes the proxy instead (a network partition or a failover that leaves connections
 * hanging without a reset): the same calls must still answer 503 within a few seconds, not hang.
 */
import net from 'node:net';
import { Cluster, freePort, waitFor } from './helpers';

jest.setTimeout(120_000);

class TcpProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private readonly pairs = new Set<[net.Socket, net.Socket]>();
  /** Frozen: connections stay open but nothing passes, new ones are accepted and ignored (a partition). */
  private frozen = false;

  constructor(
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  async open(): Promise<void> {
    const server = net.createServer((client) => {
      this.sockets.add(client);
      client.on('close', () => this.sockets.delete(client));
      client.on('error', () => undefined);
      if (this.frozen) return;
      const upstream = net.connect(this.target);
      this.sockets.add(upstream);
      upstream.on('close', () => this.sockets.delete(upstream));
      upstream.on('error', () => undefined);
      const pair: [net.Socket, net.Socket] = [client, upstream];
      this.pairs.add(pair);
      client.on('close', () => {
        upstream.destroy();
        this.pairs.delete(pair);
      });
      upstream.on('close', () => client.destroy());
      client.pipe(upstream);
      upstream.pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
  }

  /** Keeps every connection open but lets nothing through, in either direction (no RST, no FIN). */
  freeze(): void {
    this.frozen = true;
    for (const [a, b] of this.pairs) {
      a.unpipe(b);
      b.unpipe(a);
      a.pause();
      b.pause();
    }
  }

  /** Ends a partition: the stalled connections are cut (as a peer's TCP would eventually), new ones pass. */
  thaw(): void {
    this.frozen = false;
    for (const s of this.sockets) s.destroy();
  }

  /** Stops listening and cuts every proxied connection. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((r) => server.close(() => r()));
  }
}

let c: Cluster;
let proxy: TcpProxy;

beforeAll(async () => {
  const port = await freePort();
  c = await Cluster.create({
    databaseUrl: (direct) => {
      const u = new URL(direct);
      proxy = new TcpProxy(port, { host: u.hostname, port: Number(u.port || 5432) });
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString();
    },
  });
  await proxy.open();
});

afterAll(async () => {
  await proxy?.open().catch(() => undefined); // the clean-up needs the database
  await c?.close();
  await proxy?.close();
});

test('Postgres down: prompt 503s naming the database, /readyz 503, kernels keep running, recovery without restart', async () => {
  const sg = await c.start('serve');
  const k1 = await c.launch(sg);
  const ws = await c.connect(sg, k1);
  try {
    expect((await ws.execute('x = 1; print("ok")')).stdout).toBe('ok\n');

    await proxy.close();

    // Calls that need the database: user-token auth, listing, one kernel, a launch (admin token too).
    const calls: Array<[string, string, unknown, string | undefined]> = [
      ['GET', '/api/kernels', undefined, undefined],
      ['GET', `/api/kernels/${k1}`, undefined, undefined],
      ['POST', '/api/kernels', c.launchBody(), undefined],
      ['GET', '/api/kernels', undefined, c.adminToken],
      ['POST', '/api/kernels', c.launchBody(), c.adminToken],
    ];
    for (const [method, p, body, token] of calls) {
      const res = await c.api<{ message: string }>(sg, method, p, body, { timeoutMs: 20_000, token });
      expect({ call: `${method} ${p}${token ? ' (admin)' : ''}`, status: res.status, fast: res.ms < 5_000 }).toEqual({ call: `${method} ${p}${token ? ' (admin)' : ''}`, status: 503, fast: true });
      expect(res.body.message).toMatch(/database/i);
    }
    const ready = await c.api<{ checks: Record<string, string> }>(sg, 'GET', '/readyz', undefined, { timeoutMs: 20_000 });
    expect(ready.status).toBe(503);
    expect(ready.ms).toBeLessThan(5_000);
    expect(ready.body.checks.database).not.toBe('ok');
    expect((await fetch(`${sg.url}/healthz`)).status).toBe(200);

    // The open websocket does not need the database.
    expect((await ws.execute('print(x + 1)', 10_000)).stdout).toBe('2\n');
    // A new one does (token and kernel lookup): refused promptly, not hung.
    const started = Date.now();
    await expect(c.connect(sg, k1)).rejects.toThrow(/503/);
    expect(Date.now() - started).toBeLessThan(5_000);

    await proxy.open();
    await waitFor('/readyz 200', async () => (await c.api(sg, 'GET', '/readyz', undefined, { timeoutMs: 5_000 })).status === 200, 20_000, 250);
    const list = await c.api<Array<{ id: string; execution_state: string }>>(sg, 'GET', '/api/kernels');
    expect(list.status).toBe(200);
    expect(list.body.map((k) => k.id)).toEqual([k1]);
    const k2 = await c.launch(sg);
    const ws2 = await c.connect(sg, k2);
    try {
      expect((await ws2.execute('print(6*7)')).stdout).toBe('42\n');
    } finally {
      ws2.close();
    }
    const again = await c.connect(sg, k1);
    try {
      expect((await again.execute('print(x + 2)')).stdout).toBe('3\n');
    } finally {
      again.close();
    }
    expect((await ws.execute('print(x)')).stdout).toBe('1\n');
    expect(sg.child.exitCode).toBeNull();
  } finally {
    ws.close();
  }
});

test('Postgres unreachable without a reset (partition): DB calls still answer 503 within a few seconds, then recover', async () => {
  const sg = c.nodes.find((n) => n.role === 'serve')!;
  // Several pooled connections, idle now.
  await Promise.all(Array.from({ length: 5 }, () => c.api(sg, 'GET', '/api/kernels')));
  proxy.freeze();
  try {
    const outcomes: string[] = [];
    for (const p of ['/api/kernels', '/api/kernels', '/readyz', '/api/kernels']) {
      const started = Date.now();
      const res = await c.api(sg, 'GET', p, undefined, { timeoutMs: 8_000 }).then(
        (r) => `${r.status}`,
        () => 'no answer',
      );
      outcomes.push(`GET ${p}: ${res} after ${Math.round((Date.now() - started) / 1000)} s`);
    }
    expect(outcomes.filter((o) => !/: 503 after [0-5] s$/.test(o))).toEqual([]);
  } finally {
    proxy.thaw();
  }
  await waitFor('/readyz 200', async () => (await c.api(sg, 'GET', '/readyz', undefined, { timeoutMs: 5_000 })).status === 200, 20_000, 250);
  expect((await c.api(sg, 'GET', '/api/kernels')).status).toBe(200);
});
