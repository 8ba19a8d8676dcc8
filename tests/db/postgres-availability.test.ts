/**
 * Postgres going away: unreachable servers give DatabaseUnavailableError without the password, dropped
 * connections do not crash the process, and a Db recovers on its own when the server is back. A TCP
 * proxy in front of the local server stands in for Postgres going down and up.
 */
import net from 'node:net';
import pg from 'pg';
import { createPostgresDb, DatabaseUnavailableError, migrate, openDatabase, type Db } from '../../src/db';
import { ADMIN_URL, captureLogger, createTestPostgres, rejectionOf, type TestPostgres } from './helpers';

const PASSWORD = 'pa55-w0rd_secret%21';
const DECODED_PASSWORD = 'pa55-w0rd_secret!';

/** Forwards a local port to the test Postgres; `stop()` cuts every open connection like a crash would. */
class TcpProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  /** Picks a free port without listening on it yet. */
  async reserve(): Promise<number> {
    await this.start();
    await this.stop();
    return this.port;
  }

  async start(): Promise<void> {
    const upstream = new URL(ADMIN_URL);
    const server = net.createServer((client) => {
      const server = net.connect(Number(upstream.port || 5432), upstream.hostname);
      for (const s of [client, server]) {
        this.sockets.add(s);
        s.on('error', () => undefined);
        s.on('close', () => {
          this.sockets.delete(s);
          client.destroy();
          server.destroy();
        });
      }
      client.pipe(server);
      server.pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

function expectUnavailable(err: Error, where: RegExp): void {
  expect(err).toBeInstanceOf(DatabaseUnavailableError);
  expect(err.name).toBe('DatabaseUnavailableError');
  expect(err.message).toMatch(where);
  expect(err.message).not.toContain(PASSWORD);
  expect(err.message).not.toContain(DECODED_PASSWORD);
  expect(err.cause).toBeDefined();
}

describe('Postgres unreachable', () => {
  const closedPortUrl = `postgres://spawngate:${PASSWORD}@127.0.0.1:1/spawngate`;

  test('a closed port gives DatabaseUnavailableError naming host and port, never the password', async () => {
    const db = createPostgresDb({ url: closedPortUrl, logger: captureLogger().logger });
    try {
      expectUnavailable(await rejectionOf(db.ping()), /127\.0\.0\.1:1\/spawngate.*ECONNREFUSED/);
      expectUnavailable(await rejectionOf(db.query('SELECT 1')), /127\.0\.0\.1:1/);
      expectUnavailable(await rejectionOf(db.tx(async (q) => q.query('SELECT 1'))), /127\.0\.0\.1:1/);
    } finally {
      await db.close();
    }
  });

  test('an unresolvable host gives DatabaseUnavailableError', async () => {
    const db = createPostgresDb({
      url: `postgres://u:${PASSWORD}@no-such-host.invalid:5432/x`,
      logger: captureLogger().logger,
    });
    try {
      expectUnavailable(await rejectionOf(db.ping()), /no-such-host\.invalid:5432/);
    } finally {
      await db.close();
    }
  });

  test('a server that accepts but never answers times out as unavailable', async () => {
    const held: net.Socket[] = [];
    const silent = net.createServer((s) => held.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
    const port = (silent.address() as net.AddressInfo).port;
    const db = createPostgresDb({
      url: `postgres://u:${PASSWORD}@127.0.0.1:${port}/x`,
      connectionTimeoutMillis: 300,
      logger: captureLogger().logger,
    });
    try {
      const started = Date.now();
      expectUnavailable(await rejectionOf(db.ping()), /timeout|terminated/i);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await db.close();
      held.forEach((s) => s.destroy());
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });

  test('openDatabase names SPAWNGATE_DATABASE_URL and host/port, never the password', async () => {
    const err = await rejectionOf(
      openDatabase({ databaseUrl: closedPortUrl, dataDir: '/nonexistent', logger: captureLogger().logger }),
    );
    expectUnavailable(err, /SPAWNGATE_DATABASE_URL/);
    expect(err.message).toContain('127.0.0.1:1');
    await expect(openDatabase({ databaseUrl: 'postgres://u:p@[bad', dataDir: '/x' })).rejects.toThrow(
      /SPAWNGATE_DATABASE_URL is not a valid postgres:\/\/ URL/,
    );
  });

  test('wrong credentials are reported without the password', async () => {
    const url = new URL(ADMIN_URL);
    url.username = 'no_such_role';
    url.password = PASSWORD;
    const err = await rejectionOf(
      openDatabase({ databaseUrl: url.toString(), dataDir: '/x', logger: captureLogger().logger }),
    );
    expectUnavailable(err, /SPAWNGATE_DATABASE_URL/);
  });
});

describe('Postgres going down and coming back', () => {
  let t: TestPostgres;
  const proxy = new TcpProxy();
  const { logger, records } = captureLogger();
  let db: Db | undefined;
  beforeAll(async () => {
    t = await createTestPostgres({ logger });
    await migrate(t.db);
  });
  afterAll(async () => {
    await db?.close();
    await proxy.stop();
    await t.drop();
  });

  function proxiedUrl(): string {
    const url = new URL(t.url);
    url.port = String(proxy.port);
    url.password = PASSWORD; // trust auth ignores it; it must still never show up
    return url.toString();
  }

  test('a Db created while Postgres is down works once it is up, survives a drop, and recovers again', async () => {
    await proxy.reserve();
    db = createPostgresDb({ url: proxiedUrl(), connectionTimeoutMillis: 1000, logger });

    expectUnavailable(await rejectionOf(db.ping()), new RegExp(`127\\.0\\.0\\.1:${proxy.port}`));

    await proxy.start();
    await db.ping();
    expect(await db.query('SELECT count(*) AS n FROM users')).toEqual([{ n: 0 }]);
    // Hold several idle connections in the pool so the drop hits them (pool 'error' events).
    await Promise.all([1, 2, 3].map(() => db!.query('SELECT pg_sleep(0.05)')));

    await proxy.stop();
    await new Promise((r) => setTimeout(r, 50));
    // The pool reported the dropped idle connections instead of crashing on an unhandled 'error'.
    const lost = records.filter((r) => String(r.message).includes('connection lost'));
    expect(lost.length).toBeGreaterThan(0);
    expect(JSON.stringify(records)).not.toContain(PASSWORD);
    expectUnavailable(await rejectionOf(db.query('SELECT 1')), /unavailable/);
    expectUnavailable(await rejectionOf(db.tx(async (q) => q.query('SELECT 1'))), /unavailable/);

    await proxy.start();
    expect(await db.query('SELECT 1 AS ok')).toEqual([{ ok: 1 }]);
    await db.tx(async (q) => q.query("INSERT INTO users (username) VALUES ('after-recovery')"));
    expect(await t.db.query('SELECT username FROM users')).toEqual([{ username: 'after-recovery' }]);
  });

  test('a restart right before a transaction is absorbed: BEGIN on a dead pooled connection is retried', async () => {
    await db!.query('SELECT 1'); // leaves an idle pooled connection
    await proxy.stop();
    await proxy.start(); // no pause: the pool has not yet noticed its connection is gone
    await db!.tx(async (q) => q.query("INSERT INTO users (username) VALUES ('after-restart')"));
    expect(await t.db.query("SELECT count(*) AS n FROM users WHERE username = 'after-restart'")).toEqual([
      { n: 1 },
    ]);
  });

  test('a connection cut in the middle of a transaction fails that transaction only', async () => {
    const err = await rejectionOf(
      db!.tx(async (q) => {
        await q.query("INSERT INTO users (username) VALUES ('lost')");
        await proxy.stop();
        await new Promise((r) => setTimeout(r, 50)); // the client sees the drop while idle in the tx
        await q.query('SELECT 1');
      }),
    );
    expectUnavailable(err, /unavailable/);
    await proxy.start();
    expect(await db!.query("SELECT count(*) AS n FROM users WHERE username = 'lost'")).toEqual([{ n: 0 }]);
  });

  test('backends terminated by an administrator (57P01) are survived', async () => {
    const terminateAll = async () => {
      const admin = new pg.Client({ connectionString: ADMIN_URL });
      await admin.connect();
      await admin.query(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
        [new URL(t.url).pathname.slice(1)],
      );
      await admin.end();
    };
    // Idle pooled connections terminated: the pool drops them, the next query reconnects.
    await t.db.query('SELECT 1');
    await terminateAll();
    await new Promise((r) => setTimeout(r, 100));
    expect(await t.db.query('SELECT 2 AS two')).toEqual([{ two: 2 }]);

    // Terminated inside a transaction: that transaction fails as unavailable; the Db keeps working.
    const err = await rejectionOf(
      t.db.tx(async (q) => {
        await q.query('SELECT 1');
        await terminateAll();
        await q.query('SELECT 1');
      }),
    );
    expect(err).toBeInstanceOf(DatabaseUnavailableError);
    expect(await t.db.query('SELECT 3 AS three')).toEqual([{ three: 3 }]);
  });

  test('no log record carries the password', () => {
    expect(records.length).toBeGreaterThan(0);
    const text = JSON.stringify(records);
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain(DECODED_PASSWORD);
  });

  test('SQL errors are not mistaken for unavailability', async () => {
    const err = await rejectionOf(t.db.query('SELEC 1'));
    expect(err).not.toBeInstanceOf(DatabaseUnavailableError);
    expect(err.code).toBe('42601');
    const err2 = await rejectionOf(t.db.query('SELECT * FROM no_such_table'));
    expect(err2.code).toBe('42P01');
  });
});
