/** resolveQuota: every outcome on both engines, and administrators' committed changes seen at once. */
import pg from 'pg';
import { migrate, resolveQuota, type Db } from '../../src/db';
import { ENGINE_START_TIMEOUT_MS, ADMIN_EXAMPLE, createTestPostgres, engines, type TestEngine } from './helpers';

const genomics = {
  id: expect.any(Number),
  name: 'genomics',
  cpu_request: 0.5,
  cpu_limit: 2,
  memory_request_mib: 512,
  memory_limit_mib: 4096,
  gpu_limit: 0,
};

describe.each(engines)('resolveQuota on %s', (_name, create) => {
  let engine: TestEngine;
  let db: Db;
  beforeAll(async () => {
    engine = await create();
    db = engine.db;
    await migrate(db);
  }, ENGINE_START_TIMEOUT_MS);
  afterAll(() => engine.close());
  beforeEach(async () => {
    await db.query('TRUNCATE users, experiments, environments, experiment_members RESTART IDENTITY CASCADE');
    await db.query(ADMIN_EXAMPLE);
  });

  test('granted: active member of an active experiment gets its numbers as numbers', async () => {
    const r = await resolveQuota(db, { username: 'alice', environment: 'tf' });
    expect(r).toEqual({ kind: 'granted', experiment: genomics });
  });

  test('unregistered: environment not in the database', async () => {
    expect(await resolveQuota(db, { username: 'alice', environment: 'pytorch' })).toEqual({
      kind: 'unregistered',
    });
  });

  test('not-member: unknown user, and known user outside the experiment', async () => {
    expect(await resolveQuota(db, { username: 'mallory', environment: 'tf' })).toEqual({
      kind: 'not-member',
      experiment: genomics,
    });
    await db.query("INSERT INTO users (username) VALUES ('bob')");
    expect(await resolveQuota(db, { username: 'bob', environment: 'tf' })).toEqual({
      kind: 'not-member',
      experiment: genomics,
    });
  });

  test('inactive-experiment', async () => {
    await db.query("UPDATE experiments SET active = false WHERE name = 'genomics'");
    expect(await resolveQuota(db, { username: 'alice', environment: 'tf' })).toEqual({
      kind: 'inactive-experiment',
      experiment: genomics,
    });
  });

  test('inactive-user', async () => {
    await db.query("UPDATE users SET active = false WHERE username = 'alice'");
    expect(await resolveQuota(db, { username: 'alice', environment: 'tf' })).toEqual({
      kind: 'inactive-user',
      experiment: genomics,
    });
  });

  test('membership in another experiment does not count', async () => {
    await db.query(`
      INSERT INTO users (username) VALUES ('carol');
      INSERT INTO experiments (name, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib) VALUES ('physics', 1, 1, 256, 256);
      INSERT INTO experiment_members (experiment_id, user_id)
        SELECT e.id, u.id FROM experiments e, users u WHERE e.name = 'physics' AND u.username = 'carol';`);
    expect((await resolveQuota(db, { username: 'carol', environment: 'tf' })).kind).toBe('not-member');
  });

  test('fractional and GPU values round-trip; a committed change applies to the next call', async () => {
    await db.query(
      "UPDATE experiments SET cpu_request = 1.25, cpu_limit = 3.5, gpu_limit = 2 WHERE name = 'genomics'",
    );
    expect(await resolveQuota(db, { username: 'alice', environment: 'tf' })).toEqual({
      kind: 'granted',
      experiment: { ...genomics, cpu_request: 1.25, cpu_limit: 3.5, gpu_limit: 2 },
    });
    await db.query('DELETE FROM experiment_members');
    expect((await resolveQuota(db, { username: 'alice', environment: 'tf' })).kind).toBe('not-member');
  });

  test('works inside a transaction', async () => {
    const r = await db.tx((q) => resolveQuota(q, { username: 'alice', environment: 'tf' }));
    expect(r.kind).toBe('granted');
  });
});

describe('resolveQuota on postgres sees an administrator’s separate psql session', () => {
  test('a change committed on another connection applies to the next call, no restart', async () => {
    const t = await createTestPostgres();
    const admin = new pg.Client({ connectionString: t.url });
    try {
      await migrate(t.db);
      await admin.connect();
      await admin.query(ADMIN_EXAMPLE);
      expect((await resolveQuota(t.db, { username: 'alice', environment: 'tf' })).kind).toBe('granted');

      await admin.query('BEGIN');
      await admin.query("UPDATE experiments SET memory_limit_mib = 8192 WHERE name = 'genomics'");
      // Not committed yet: the service still sees the old limit.
      const before = await resolveQuota(t.db, { username: 'alice', environment: 'tf' });
      expect(before.kind === 'granted' && before.experiment.memory_limit_mib).toBe(4096);
      await admin.query('COMMIT');
      const after = await resolveQuota(t.db, { username: 'alice', environment: 'tf' });
      expect(after.kind === 'granted' && after.experiment.memory_limit_mib).toBe(8192);

      await admin.query("UPDATE users SET active = false WHERE username = 'alice'");
      expect((await resolveQuota(t.db, { username: 'alice', environment: 'tf' })).kind).toBe('inactive-user');
    } finally {
      await admin.end().catch(() => undefined);
      await t.drop();
    }
  });
});
