/** Migrations on both engines, and concurrent migration from two replicas on one Postgres database. */
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createPostgresDb, migrate, pendingMigrations, type Db } from '../../src/db';
import { ENGINE_START_TIMEOUT_MS, captureLogger, createTestPostgres, engines, rejectionOf, type TestEngine } from './helpers';

async function migrationDir(files: Record<string, string>): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'spawngate-migrations-'));
  for (const [name, sql] of Object.entries(files)) await fs.writeFile(path.join(dir, name), sql);
  return dir;
}

describe.each(engines)('migrate on %s', (_name, create) => {
  let engine: TestEngine;
  let db: Db;
  beforeEach(async () => {
    engine = await create();
    db = engine.db;
  }, ENGINE_START_TIMEOUT_MS);
  afterEach(() => engine.close());

  test('applies the bundled migrations once; re-running is a no-op', async () => {
    // Every NNN_name.sql file shipped in src/db/migrations, in version order.
    const bundled = (await fs.readdir(path.join(__dirname, '..', '..', 'src', 'db', 'migrations')))
      .filter((f) => f.endsWith('.sql'))
      .sort()
      .map((f) => ({ version: Number(f.slice(0, 3)), name: f.slice(4, -4) }));
    expect(bundled.slice(0, 2)).toEqual([
      { version: 1, name: 'initial' },
      { version: 2, name: 'kernels' },
    ]);
    expect(await pendingMigrations(db)).toEqual(bundled);
    expect(await migrate(db)).toEqual(bundled);
    expect(await migrate(db)).toEqual([]);
    expect(await pendingMigrations(db)).toEqual([]);
    const rows = await db.query<{ version: number; name: string; applied_at: Date }>(
      'SELECT * FROM schema_migrations ORDER BY version',
    );
    expect(rows).toEqual(bundled.map((m) => ({ ...m, applied_at: expect.any(Date) })));
    const tables = await db.query<{ t: string }>(
      "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    );
    expect(tables.map((r) => r.t)).toEqual(
      expect.arrayContaining([
        'users',
        'experiments',
        'environments',
        'experiment_members',
        'servers',
        'server_events',
        'api_tokens',
        'kernels',
        'kernel_launches',
      ]),
    );
  });

  test('applies files in version order, each in its own transaction; a failing file rolls back alone', async () => {
    const dir = await migrationDir({
      '002_second.sql': 'ALTER TABLE a ADD COLUMN b INT; INSERT INTO a (x, b) VALUES (2, 2);',
      '001_first.sql': 'CREATE TABLE a (x INT); INSERT INTO a (x) VALUES (1);',
      '003_broken.sql': 'INSERT INTO a (x) VALUES (3); SELECT no_such_column FROM a;',
      'README.txt': 'not a migration',
    });
    const err = await rejectionOf(migrate(db, { directory: dir }));
    expect(err.message).toMatch(/003_broken\.sql failed: .*no_such_column/);
    expect(await db.query('SELECT x, b FROM a ORDER BY x')).toEqual([
      { x: 1, b: null },
      { x: 2, b: 2 },
    ]);
    expect(await pendingMigrations(db, { directory: dir })).toEqual([{ version: 3, name: 'broken' }]);

    await fs.writeFile(path.join(dir, '003_broken.sql'), 'INSERT INTO a (x) VALUES (3);');
    expect(await migrate(db, { directory: dir })).toEqual([{ version: 3, name: 'broken' }]);
    expect(await db.query('SELECT count(*) AS n FROM a')).toEqual([{ n: 3 }]);
  });

  test('rejects badly named or duplicate-version files', async () => {
    await expect(migrate(db, { directory: await migrationDir({ 'first.sql': 'SELECT 1' }) })).rejects.toThrow(
      /not named NNN_name\.sql/,
    );
    await expect(
      migrate(db, { directory: await migrationDir({ '001_a.sql': 'SELECT 1', '1_b.sql': 'SELECT 1' }) }),
    ).rejects.toThrow(/two migrations have version 1/);
  });
});

describe('concurrent migrate on one Postgres database', () => {
  test('replicas migrating at once apply every file exactly once', async () => {
    const t = await createTestPostgres();
    const replicas = [
      t.db,
      ...Array.from({ length: 3 }, () =>
        createPostgresDb({ url: t.url, max: 2, logger: captureLogger().logger }),
      ),
    ];
    try {
      const dir = await migrationDir({
        '001_initial.sql': await fs.readFile(
          path.join(__dirname, '../../src/db/migrations/001_initial.sql'),
          'utf8',
        ),
        '002_counter.sql': 'CREATE TABLE applied_counter (n INT); INSERT INTO applied_counter VALUES (1);',
        '003_more.sql': 'INSERT INTO applied_counter VALUES (3);',
      });
      const results = await Promise.all(replicas.map((db) => migrate(db, { directory: dir })));
      const all = results
        .flat()
        .map((m) => m.version)
        .sort();
      expect(all).toEqual([1, 2, 3]);
      expect(await t.db.query('SELECT n FROM applied_counter ORDER BY n')).toEqual([{ n: 1 }, { n: 3 }]);
      expect(await t.db.query('SELECT version FROM schema_migrations ORDER BY version')).toEqual([
        { version: 1 },
        { version: 2 },
        { version: 3 },
      ]);
    } finally {
      await Promise.all(replicas.slice(1).map((db) => db.close()));
      await t.drop();
    }
  });
});
