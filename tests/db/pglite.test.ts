/** PGlite-specific: one connection, so transactions and queries are serialized; on-disk persistence. */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createPgliteDb, migrate, openDatabase, pendingMigrations, type Db } from '../../src/db';
import { ENGINE_START_TIMEOUT_MS, createTestPglite, rejectionOf } from './helpers';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('PGlite serialization', () => {
  let db: Db;
  beforeAll(async () => {
    db = await createTestPglite();
    await db.query(
      'CREATE TABLE counter (n INT NOT NULL); INSERT INTO counter VALUES (0); CREATE TABLE log (entry TEXT)',
    );
  }, ENGINE_START_TIMEOUT_MS);
  afterAll(() => db.close());

  test('concurrent read-modify-write transactions do not interleave', async () => {
    await db.query('UPDATE counter SET n = 0');
    const trace: string[] = [];
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        db.tx(async (q) => {
          trace.push(`begin ${i}`);
          const [row] = await q.query<{ n: number }>('SELECT n FROM counter');
          await sleep(2);
          await q.query('UPDATE counter SET n = $1', [row!.n + 1]);
          trace.push(`end ${i}`);
        }),
      ),
    );
    expect(await db.query('SELECT n FROM counter')).toEqual([{ n: 20 }]);
    for (let i = 0; i < trace.length; i += 2) {
      expect(trace[i]!.replace('begin', '')).toBe(trace[i + 1]!.replace('end', ''));
    }
  });

  test('a plain query issued during a transaction waits for its commit', async () => {
    await db.query('DELETE FROM log');
    const order: string[] = [];
    const tx = db.tx(async (q) => {
      await q.query("INSERT INTO log VALUES ('in-tx')");
      await sleep(50);
      order.push('commit');
    });
    await sleep(5);
    const seen = db.query<{ n: number }>('SELECT count(*) AS n FROM log').then((rows) => {
      order.push('query');
      return rows;
    });
    await Promise.all([tx, seen]);
    expect(order).toEqual(['commit', 'query']);
    expect(await seen).toEqual([{ n: 1 }]);
  });

  test('a query waiting behind a rolled-back transaction does not see its writes', async () => {
    await db.query('DELETE FROM log');
    const tx = db.tx(async (q) => {
      await q.query("INSERT INTO log VALUES ('rolled back')");
      await sleep(20);
      throw new Error('abort');
    });
    const seen = db.query('SELECT * FROM log');
    await expect(tx).rejects.toThrow('abort');
    expect(await seen).toEqual([]);
    // The connection is usable afterwards, outside any transaction.
    await db.tx(async (q) => q.query("INSERT INTO log VALUES ('next')"));
    expect(await db.query('SELECT entry FROM log')).toEqual([{ entry: 'next' }]);
  });

  test('calling the Db itself from inside a transaction fails fast instead of deadlocking', async () => {
    const err = await rejectionOf(db.tx(async () => db.query('SELECT 1')));
    expect(err.message).toMatch(/would deadlock/);
    const nested = await rejectionOf(db.tx(async () => db.tx(async (q) => q.query('SELECT 1'))));
    expect(nested.message).toMatch(/would deadlock/);
    await expect(db.query('SELECT 1 AS ok')).resolves.toEqual([{ ok: 1 }]);
  });

  test('work a transaction started in the background may use the Db once the transaction ended', async () => {
    let later: Promise<unknown> | undefined;
    await db.tx(async (q) => {
      later = sleep(20).then(() => db.query('SELECT 2 AS two'));
      await q.query('SELECT 1');
    });
    await expect(later).resolves.toEqual([{ two: 2 }]);
  });

  test('ping fails as unavailable after close', async () => {
    const other = await createTestPglite();
    await other.close();
    await expect(other.ping()).rejects.toMatchObject({ name: 'DatabaseUnavailableError' });
  });
});

describe('PGlite on disk', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'spawngate-pglite-'));
  });
  afterAll(() => fs.rm(dir, { recursive: true, force: true }));

  // Issue 12: the embedded default is now the embedded engine; PGlite stays for the upgrade of old
  // data directories (pglite-upgrade.ts), so its on-disk persistence is still asserted here.
  test('a PGlite directory keeps its data across a reopen', async () => {
    const first = await createPgliteDb({ dataDir: path.join(dir, 'db') });
    expect(first.kind).toBe('pglite');
    await migrate(first);
    await first.query("INSERT INTO users (username) VALUES ('alice')");
    await first.close();
    expect((await fs.stat(path.join(dir, 'db'))).isDirectory()).toBe(true);

    const second = await createPgliteDb({ dataDir: path.join(dir, 'db') });
    try {
      expect(await pendingMigrations(second)).toEqual([]);
      expect(await migrate(second)).toEqual([]);
      expect(await second.query('SELECT username FROM users')).toEqual([{ username: 'alice' }]);
    } finally {
      await second.close();
    }
  });

  test('openDatabase without a URL opens the embedded engine at <dataDir>/pg, and data survives a reopen', async () => {
    const embedded = path.join(dir, 'embedded');
    const first = await openDatabase({ dataDir: embedded });
    await migrate(first);
    await first.query("INSERT INTO users (username) VALUES ('alice')");
    await first.close();
    expect((await fs.stat(path.join(embedded, 'pg', 'PG_VERSION'))).isFile()).toBe(true);
    const second = await openDatabase({ dataDir: embedded });
    try {
      expect(await pendingMigrations(second)).toEqual([]);
      expect(await second.query('SELECT username FROM users')).toEqual([{ username: 'alice' }]);
    } finally {
      await second.close();
    }
  });
});
