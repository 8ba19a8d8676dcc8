/**
 * The token-lookup cache (db/token-cache.ts) against real Postgres: answers come from memory only while
 * the credential channel is live, and every change that makes an answer wrong — by spawngate or by an
 * administrator's SQL on another connection — is seen by the very next lookup after Postgres delivers
 * the notification. Also on PGlite (one process, notifications in-process).
 */
import pg from 'pg';
import {
  createTokenLookupCache,
  migrate,
  mintToken,
  revokeToken,
  type Db,
  type TokenLookupCache,
} from '../../src/db';
import { eventually, sleep } from '../support/wait';
import { captureLogger, createTestPglite, createTestPostgres, ENGINE_START_TIMEOUT_MS, type TestPostgres } from './helpers';

/** `db` with its queries counted (and optionally held back after they ran), everything else passed through. */
function counting(db: Db): Db & { queries: number; hold?: Promise<void> } {
  const wrapped = Object.create(db) as Db & { queries: number; hold?: Promise<void> };
  wrapped.queries = 0;
  wrapped.query = async (sql: string, params?: readonly unknown[]) => {
    wrapped.queries++;
    const rows = await db.query(sql, params);
    if (wrapped.hold) await wrapped.hold;
    return rows as never;
  };
  return wrapped;
}

describe('token lookup cache on Postgres', () => {
  let t: TestPostgres;
  let admin: pg.Client;
  let db: ReturnType<typeof counting>;
  let cache: TokenLookupCache;
  const log = captureLogger();
  const dbLog = captureLogger();

  beforeAll(async () => {
    t = await createTestPostgres({ logger: dbLog.logger });
    await migrate(t.db);
    await t.db.query("INSERT INTO users (username) VALUES ('alice'), ('bob')");
    admin = new pg.Client({ connectionString: t.url });
    await admin.connect();
  }, ENGINE_START_TIMEOUT_MS);
  beforeEach(async () => {
    db = counting(t.db);
    cache = createTokenLookupCache(db, { logger: log.logger });
    expect(await eventually(() => cache.caching, 5000)).toBe(true);
  });
  afterEach(() => cache.close());
  afterAll(async () => {
    await admin.end();
    await t.drop();
  });

  /** Polls lookups until `ok`, returning how long the change took to be seen (fails after 2 s). */
  async function seen(token: string, ok: (l: Awaited<ReturnType<TokenLookupCache['lookup']>>) => boolean): Promise<number> {
    const start = Date.now();
    while (!ok(await cache.lookup(token))) {
      if (Date.now() - start > 2000) throw new Error('the change was not seen within 2 s');
      await sleep(1);
    }
    return Date.now() - start;
  }

  test('a valid token is read once, then answered from memory', async () => {
    const token = await mintToken(t.db, { username: 'alice', kind: 'cli' });
    expect((await cache.lookup(token))?.status).toBe('valid');
    const after = db.queries;
    for (let i = 0; i < 20; i++) expect((await cache.lookup(token))?.username).toBe('alice');
    expect(db.queries).toBe(after);
  });

  test('unknown and revoked tokens are never remembered', async () => {
    const revoked = await mintToken(t.db, { username: 'alice', kind: 'cli' });
    await revokeToken(t.db, revoked);
    const before = db.queries;
    for (let i = 0; i < 3; i++) {
      expect(await cache.lookup('sg_nosuchtoken')).toBeUndefined();
      expect((await cache.lookup(revoked))?.status).toBe('revoked');
    }
    expect(db.queries).toBe(before + 6);
    // A token minted after "unknown" was answered is valid at once.
    const later = await mintToken(t.db, { username: 'alice', kind: 'cli' });
    expect((await cache.lookup(later))?.status).toBe('valid');
  });

  test.each([
    ['revoked by admin SQL', "UPDATE api_tokens SET revoked_at = now() WHERE username = 'bob'", (l: unknown) => (l as { status?: string })?.status === 'revoked'],
    ['deleted by admin SQL', "DELETE FROM api_tokens WHERE username = 'bob'", (l: unknown) => l === undefined],
    ['expired by admin SQL', "UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE username = 'bob'", (l: unknown) => (l as { status?: string })?.status === 'expired'],
    ['owner deactivated by admin SQL', "UPDATE users SET active = false WHERE username = 'bob'", (l: unknown) => (l as { userActive?: boolean })?.userActive === false],
    ['owner renamed by admin SQL', "UPDATE api_tokens SET username = 'carol' WHERE username = 'bob'", (l: unknown) => (l as { username?: string })?.username === 'carol'],
    ['table truncated', 'TRUNCATE api_tokens', (l: unknown) => l === undefined],
  ])('%s on another connection: the next lookups see it within milliseconds', async (_what, sql, ok) => {
    await t.db.query("UPDATE users SET active = true WHERE username = 'bob'");
    const token = await mintToken(t.db, { username: 'bob', kind: 'cli' });
    const other = await mintToken(t.db, { username: 'alice', kind: 'cli' });
    expect((await cache.lookup(token))?.status).toBe('valid');
    expect((await cache.lookup(other))?.status).toBe('valid');
    const before = db.queries;
    await admin.query(sql);
    const ms = await seen(token, ok);
    expect(ms).toBeLessThan(500);
    // Only bob's answers were forgotten (a TRUNCATE forgets everything, and alice's token is gone).
    if (!sql.startsWith('TRUNCATE')) {
      await cache.lookup(other);
      expect(db.queries).toBeGreaterThan(before);
      const q = db.queries;
      await cache.lookup(other);
      expect(db.queries).toBe(q);
    }
  });

  test('an answer read while a change was announced is not remembered', async () => {
    const token = await mintToken(t.db, { username: 'alice', kind: 'cli' });
    let release!: () => void;
    db.hold = new Promise((r) => (release = r));
    // The read sees the token valid, then is held back while the revocation commits and is announced.
    const pending = cache.lookup(token);
    await eventually(() => db.queries > 0, 2000);
    await sleep(50);
    await admin.query('UPDATE api_tokens SET revoked_at = now() WHERE token_hash = encode(sha256(convert_to($1, \'UTF8\')), \'hex\')', [token]);
    await sleep(100);
    db.hold = undefined;
    release();
    expect((await pending)?.status).toBe('valid'); // that request started before the revocation
    expect((await cache.lookup(token))?.status).toBe('revoked');
  });

  test('when the listening connection is killed, lookups go to Postgres at once and caching resumes after reconnecting', async () => {
    const token = await mintToken(t.db, { username: 'alice', kind: 'cli' });
    await cache.lookup(token);
    await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'spawngate-listen' AND datname = current_database()");
    expect(await eventually(() => !cache.caching, 2000)).toBe(true);
    // While it is down, a revocation is seen by the next lookup (nothing is answered from memory).
    await admin.query('UPDATE api_tokens SET revoked_at = now() WHERE username = $1', ['alice']);
    expect((await cache.lookup(token))?.status).toBe('revoked');
    expect(await eventually(() => cache.caching, 10_000)).toBe(true);
    expect(dbLog.records.map((r) => String(r.message))).toContainEqual(expect.stringContaining('notification channel lost'));
  });

  test('a listening connection that stops answering (its backend frozen) turns caching off within the heartbeat timeout', async () => {
    const token = await mintToken(t.db, { username: 'alice', kind: 'cli' });
    await cache.lookup(token);
    const [row] = (await admin.query("SELECT pid FROM pg_stat_activity WHERE application_name = 'spawngate-listen' AND datname = current_database()")).rows as { pid: number }[];
    expect(row).toBeDefined();
    const start = Date.now();
    process.kill(row!.pid, 'SIGSTOP');
    try {
      expect(await eventually(() => !cache.caching, 5000)).toBe(true);
      expect(Date.now() - start).toBeLessThan(4500); // one heartbeat interval (1 s) + its timeout (2 s), + scheduling
      const before = db.queries;
      await cache.lookup(token);
      expect(db.queries).toBe(before + 1);
    } finally {
      process.kill(row!.pid, 'SIGCONT');
    }
    expect(await eventually(() => cache.caching, 15_000)).toBe(true);
  }, 30_000);

  test('a token close to its expiry is not answered from memory', async () => {
    const token = await mintToken(t.db, { username: 'alice', kind: 'cli', ttlSeconds: 3 });
    const before = db.queries;
    for (let i = 0; i < 3; i++) expect((await cache.lookup(token))?.status).toBe('valid');
    expect(db.queries).toBe(before + 3);
  });
});

describe('token lookup cache on PGlite', () => {
  let db: Db;
  beforeAll(async () => {
    db = await createTestPglite();
    await migrate(db);
  }, ENGINE_START_TIMEOUT_MS);
  afterAll(() => db.close());

  test('notifications arrive in-process: a revocation is seen by the next lookup', async () => {
    const cache = createTokenLookupCache(db, { logger: captureLogger().logger });
    try {
      expect(await eventually(() => cache.caching, 5000)).toBe(true);
      const token = await mintToken(db, { username: 'alice', kind: 'cli' });
      expect((await cache.lookup(token))?.status).toBe('valid');
      await db.query("UPDATE api_tokens SET revoked_at = now() WHERE username = 'alice'");
      expect((await cache.lookup(token))?.status).toBe('revoked');
    } finally {
      await cache.close();
    }
  });
});
