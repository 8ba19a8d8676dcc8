/** The Db contract, run on both engines: parameters, multi-statement strings, value types, transactions. */
import type { Db } from '../../src/db';
import { ENGINE_START_TIMEOUT_MS, engines, rejectionOf, type TestEngine } from './helpers';

describe.each(engines)('Db contract on %s', (_name, create) => {
  let engine: TestEngine;
  let db: Db;
  beforeAll(async () => {
    engine = await create();
    db = engine.db;
    await db.query(
      'CREATE TABLE t (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v TEXT NOT NULL UNIQUE)',
    );
  }, ENGINE_START_TIMEOUT_MS);
  afterAll(() => engine.close());
  beforeEach(() => db.query('TRUNCATE t'));

  test('ping answers', async () => {
    await expect(db.ping()).resolves.toBeUndefined();
  });

  test('parameters are bound, not interpolated', async () => {
    const evil = "x'); DROP TABLE t; --";
    await db.query('INSERT INTO t (v) VALUES ($1)', [evil]);
    expect(await db.query('SELECT v FROM t WHERE v = $1', [evil])).toEqual([{ v: evil }]);
  });

  test('a string without parameters may hold several statements; the last one’s rows come back', async () => {
    const rows = await db.query(
      "INSERT INTO t (v) VALUES ('a'); INSERT INTO t (v) VALUES ('b'); SELECT count(*) AS n FROM t",
    );
    expect(rows).toEqual([{ n: 2 }]);
  });

  test('value types are the same on both engines', async () => {
    const [row] = await db.query(
      `SELECT 42::bigint AS big, 1.25::numeric AS num, 7::int AS i, '{"a":[1]}'::jsonb AS j,
              now() AS ts, ARRAY[1,2]::bigint[] AS arr, NULL::text AS nothing, true AS yes`,
    );
    expect(row).toEqual({
      big: 42,
      num: '1.25',
      i: 7,
      j: { a: [1] },
      ts: expect.any(Date),
      arr: [1, 2],
      nothing: null,
      yes: true,
    });
  });

  test('tx commits and returns the callback value', async () => {
    const id = await db.tx(async (q) => {
      const [r] = await q.query<{ id: number }>('INSERT INTO t (v) VALUES ($1) RETURNING id', ['committed']);
      return r?.id;
    });
    expect(typeof id).toBe('number');
    expect(await db.query('SELECT v FROM t')).toEqual([{ v: 'committed' }]);
  });

  test('tx rolls back when the callback throws, and rethrows', async () => {
    const err = await rejectionOf(
      db.tx(async (q) => {
        await q.query('INSERT INTO t (v) VALUES ($1)', ['gone']);
        throw new Error('boom');
      }),
    );
    expect(err.message).toBe('boom');
    expect(await db.query('SELECT v FROM t')).toEqual([]);
  });

  test('a SQL error inside tx rolls back and keeps its SQLSTATE', async () => {
    await db.query("INSERT INTO t (v) VALUES ('dup')");
    const err = await rejectionOf(
      db.tx(async (q) => {
        await q.query("INSERT INTO t (v) VALUES ('other')");
        await q.query("INSERT INTO t (v) VALUES ('dup')");
      }),
    );
    expect(err.code).toBe('23505');
    expect(await db.query('SELECT v FROM t ORDER BY v')).toEqual([{ v: 'dup' }]);
  });

  test('a SQL error caught inside tx does not pass for a commit', async () => {
    await db.query("INSERT INTO t (v) VALUES ('dup')");
    const err = await rejectionOf(
      db.tx(async (q) => {
        await q.query("INSERT INTO t (v) VALUES ('other')");
        await q.query("INSERT INTO t (v) VALUES ('dup')").catch(() => undefined);
      }),
    );
    expect(err.message).toMatch(/rolled back/);
    expect(await db.query('SELECT v FROM t ORDER BY v')).toEqual([{ v: 'dup' }]);
  });

  test('the tx Queryable refuses use after the transaction ended', async () => {
    let leaked: { query: Db['query'] } | undefined;
    await db.tx(async (q) => {
      leaked = q;
    });
    await expect(leaked!.query('SELECT 1')).rejects.toThrow(/transaction already finished/);
  });
});
