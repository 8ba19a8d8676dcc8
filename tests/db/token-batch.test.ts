/**
 * Token lookups sharing statements (db/token-batch.ts) against real Postgres and PGlite: concurrent
 * lookups share one statement and each gets its own answer; a lookup made after an administrator's
 * change never joins a statement that started before it (so the change is seen at once); a failed
 * statement fails only its own lookups.
 */
import pg from 'pg';
import { createBatchedTokenLookup, DatabaseUnavailableError, hashToken, migrate, mintToken, revokeToken, type Db, type Queryable } from '../../src/db';
import { createTestPglite, createTestPostgres, ENGINE_START_TIMEOUT_MS, type TestPostgres } from './helpers';

/** `db`'s queries counted, and held back after they ran while `hold` is set. */
function counting(db: Queryable): Queryable & { statements: number; hold?: Promise<void>; fail?: Error } {
  const wrapped: Queryable & { statements: number; hold?: Promise<void>; fail?: Error } = {
    statements: 0,
    async query(sql, params) {
      wrapped.statements++;
      if (wrapped.fail) throw wrapped.fail;
      const rows = await db.query(sql, params);
      if (wrapped.hold) await wrapped.hold;
      return rows as never;
    },
  };
  return wrapped;
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe.each(['postgres', 'pglite'] as const)('batched token lookups on %s', (engine) => {
  let db: Db;
  let t: TestPostgres | undefined;
  /** Changes made the way an administrator makes them: another connection (PGlite: the same one). */
  let adminSql: (sql: string) => Promise<unknown>;
  let admin: pg.Client | undefined;

  beforeAll(async () => {
    if (engine === 'postgres') {
      t = await createTestPostgres();
      db = t.db;
      admin = new pg.Client({ connectionString: t.url });
      await admin.connect();
      adminSql = (sql) => admin!.query(sql);
    } else {
      db = await createTestPglite();
      adminSql = (sql) => db.query(sql);
    }
    await migrate(db);
    await db.query("INSERT INTO users (username) VALUES ('alice'), ('bob'), ('carol')");
  }, ENGINE_START_TIMEOUT_MS);
  afterAll(async () => {
    await admin?.end();
    if (t) await t.drop();
    else await db?.close();
  });
  afterEach(() => adminSql("UPDATE users SET active = true"));

  test('concurrent lookups share one statement and each gets its own token’s answer', async () => {
    const q = counting(db);
    const lookup = createBatchedTokenLookup(q);
    const alice = await mintToken(db, { username: 'alice', kind: 'cli' });
    const bob = await mintToken(db, { username: 'bob', kind: 'gateway' });
    const revoked = await mintToken(db, { username: 'carol', kind: 'cli' });
    await revokeToken(db, revoked);
    const expired = await mintToken(db, { username: 'carol', kind: 'cli', ttlSeconds: 1 });
    await adminSql(`UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = '${hashToken(expired)}'`);
    const unknown = `sg_${'x'.repeat(43)}`;

    const asked = [alice, bob, revoked, expired, unknown, 'not-a-token', alice, bob];
    const answers = await Promise.all(asked.map((token) => lookup(token)));
    expect(answers.map((a) => a && [a.username, a.kind, a.status])).toEqual([
      ['alice', 'cli', 'valid'],
      ['bob', 'gateway', 'valid'],
      ['carol', 'cli', 'revoked'],
      ['carol', 'cli', 'expired'],
      undefined,
      undefined,
      ['alice', 'cli', 'valid'],
      ['bob', 'gateway', 'valid'],
    ]);
    expect(q.statements).toBe(1);
  });

  test('a lookup arriving while a statement runs waits for the next, so an UPDATE committed before it is seen', async () => {
    const q = counting(db);
    const lookup = createBatchedTokenLookup(q);
    const alice = await mintToken(db, { username: 'alice', kind: 'cli' });

    const gate = deferred();
    q.hold = gate.promise;
    const before = lookup(alice); // its statement runs and is then held
    while (q.statements === 0) await new Promise((r) => setImmediate(r));
    await adminSql("UPDATE users SET active = false WHERE username = 'alice'");
    const after = lookup(alice);
    const also = lookup(alice);
    q.hold = undefined;
    gate.resolve();

    expect((await before)?.userActive).toBe(true); // read before the UPDATE
    expect((await after)?.userActive).toBe(false);
    expect((await also)?.userActive).toBe(false);
    expect(q.statements).toBe(2); // the two later lookups shared the second statement
  });

  test('a revocation by admin SQL refuses the very next lookup', async () => {
    const lookup = createBatchedTokenLookup(db);
    const bob = await mintToken(db, { username: 'bob', kind: 'gateway' });
    expect((await lookup(bob))?.status).toBe('valid');
    await adminSql(`UPDATE api_tokens SET revoked_at = now() WHERE token_hash = '${hashToken(bob)}'`);
    expect((await lookup(bob))?.status).toBe('revoked');
  });

  test('a failed statement rejects its own lookups with the database error, and the next statement answers', async () => {
    const q = counting(db);
    const lookup = createBatchedTokenLookup(q);
    const alice = await mintToken(db, { username: 'alice', kind: 'cli' });
    q.fail = new DatabaseUnavailableError('Postgres is unavailable: connection refused');
    const failed = await Promise.allSettled([lookup(alice), lookup(alice)]);
    expect(failed.map((r) => r.status === 'rejected' && r.reason)).toEqual([q.fail, q.fail]);
    q.fail = undefined;
    expect((await lookup(alice))?.username).toBe('alice');
  });

  test('more lookups than a batch holds are split across statements, none lost', async () => {
    const q = counting(db);
    const lookup = createBatchedTokenLookup(q, { maxBatchSize: 4 });
    const tokens = await Promise.all(['alice', 'bob', 'carol'].map((username) => mintToken(db, { username, kind: 'cli' })));
    const asked = Array.from({ length: 10 }, (_, i) => tokens[i % 3]!);
    const answers = await Promise.all(asked.map((token) => lookup(token)));
    expect(answers.map((a) => a?.username)).toEqual(asked.map((_, i) => ['alice', 'bob', 'carol'][i % 3]));
    expect(q.statements).toBe(3);
  });
});
