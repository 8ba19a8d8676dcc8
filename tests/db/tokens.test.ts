/** API tokens on both engines: mint, verify, revoke, expiry, and only a hash at rest. */
import { createHash } from 'node:crypto';
import {
  hashToken,
  migrate,
  mintToken,
  revokeServerTokens,
  revokeToken,
  verifyToken,
  lookupToken,
  withAuditActor,
  type Db,
} from '../../src/db';
import { ENGINE_START_TIMEOUT_MS, engines, type TestEngine } from './helpers';

describe.each(engines)('tokens on %s', (_name, create) => {
  let engine: TestEngine;
  let db: Db;
  let serverId: number;
  beforeAll(async () => {
    engine = await create();
    db = engine.db;
    await migrate(db);
    const [row] = await db.query<{ id: number }>(
      "INSERT INTO servers (username, workload_name, backend, state) VALUES ('alice', 'sg-alice', 'local', 'running') RETURNING id",
    );
    serverId = row!.id;
  }, ENGINE_START_TIMEOUT_MS);
  afterAll(() => engine.close());

  test('mint returns sg_ + 32 random bytes base64url, stores only its sha256', async () => {
    const token = await mintToken(db, { username: 'alice', kind: 'cli', note: 'laptop' });
    expect(token).toMatch(/^sg_[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(token.slice(3), 'base64url')).toHaveLength(32);
    expect(await mintToken(db, { username: 'alice', kind: 'cli' })).not.toBe(token);

    const sha = createHash('sha256').update(token).digest('hex');
    expect(hashToken(token)).toBe(sha);
    const rows = await db.query<{ row: string; token_hash: string }>(
      'SELECT to_jsonb(t)::text AS row, token_hash FROM api_tokens t WHERE token_hash = $1',
      [sha],
    );
    expect(rows).toHaveLength(1);
    const all = await db.query<{ dump: string }>(
      "SELECT string_agg(to_jsonb(t)::text, ',') AS dump FROM api_tokens t",
    );
    expect(all[0]!.dump).not.toContain(token);
    expect(all[0]!.dump).not.toContain(token.slice(3));
  });

  test('verify returns the owner; unknown, malformed and empty tokens are undefined', async () => {
    const token = await mintToken(db, { username: 'alice', kind: 'gateway', serverId });
    expect(await verifyToken(db, token)).toEqual({ username: 'alice', kind: 'gateway', serverId });
    const cli = await mintToken(db, { username: 'bob', kind: 'cli' });
    expect(await verifyToken(db, cli)).toEqual({ username: 'bob', kind: 'cli', serverId: null });

    expect(await verifyToken(db, token.slice(0, -1) + (token.endsWith('A') ? 'B' : 'A'))).toBeUndefined();
    expect(await verifyToken(db, token.slice(3))).toBeUndefined();
    expect(await verifyToken(db, hashToken(token))).toBeUndefined();
    expect(await verifyToken(db, '')).toBeUndefined();
  });

  test('revokeToken is idempotent and takes effect immediately', async () => {
    const token = await mintToken(db, { username: 'alice', kind: 'cli' });
    expect(await revokeToken(db, token)).toBe(true);
    expect(await verifyToken(db, token)).toBeUndefined();
    expect(await revokeToken(db, token)).toBe(false);
    expect(await revokeToken(db, 'sg_never-minted')).toBe(false);
  });

  test('revokeServerTokens revokes that server’s tokens only', async () => {
    const [other] = await db.query<{ id: number }>(
      "INSERT INTO servers (username, workload_name, backend, state) VALUES ('bob', 'sg-bob', 'local', 'running') RETURNING id",
    );
    const a = await mintToken(db, { username: 'alice', kind: 'gateway', serverId });
    const b = await mintToken(db, { username: 'alice', kind: 'gateway', serverId });
    const keep = await mintToken(db, { username: 'bob', kind: 'gateway', serverId: other!.id });
    const cli = await mintToken(db, { username: 'alice', kind: 'cli' });

    expect(await revokeServerTokens(db, serverId)).toBeGreaterThanOrEqual(2);
    expect(await verifyToken(db, a)).toBeUndefined();
    expect(await verifyToken(db, b)).toBeUndefined();
    expect(await verifyToken(db, keep)).toEqual({ username: 'bob', kind: 'gateway', serverId: other!.id });
    expect(await verifyToken(db, cli)).toMatchObject({ username: 'alice' });
    expect(await revokeServerTokens(db, serverId)).toBe(0);
  });

  test('ttlSeconds sets expires_at; an expired token no longer verifies', async () => {
    const token = await mintToken(db, { username: 'alice', kind: 'cli', ttlSeconds: 3600 });
    const [row] = await db.query<{ secs: string | number }>(
      'SELECT extract(epoch FROM expires_at - created_at) AS secs FROM api_tokens WHERE token_hash = $1',
      [hashToken(token)],
    );
    expect(Number(row!.secs)).toBeCloseTo(3600, 0);
    expect(await verifyToken(db, token)).toBeDefined();

    await db.query("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = $1", [
      hashToken(token),
    ]);
    expect(await verifyToken(db, token)).toBeUndefined();

    const short = await mintToken(db, { username: 'alice', kind: 'cli', ttlSeconds: 0.2 });
    expect(await verifyToken(db, short)).toBeDefined();
    await new Promise((r) => setTimeout(r, 400));
    expect(await verifyToken(db, short)).toBeUndefined();
  });

  test('non-positive ttlSeconds is refused', async () => {
    await expect(mintToken(db, { username: 'alice', kind: 'cli', ttlSeconds: 0 })).rejects.toThrow(
      RangeError,
    );
    await expect(mintToken(db, { username: 'alice', kind: 'cli', ttlSeconds: -5 })).rejects.toThrow(
      RangeError,
    );
  });

  test('an unknown kind is rejected by the database', async () => {
    await expect(mintToken(db, { username: 'alice', kind: 'admin' as never })).rejects.toMatchObject({
      code: '23514',
    });
  });

  test('lookupToken tells valid, revoked and expired apart and carries the owner\'s users.active', async () => {
    await db.query("INSERT INTO users (username, active) VALUES ('frank', false) ON CONFLICT (username) DO UPDATE SET active = false");
    const frank = await mintToken(db, { username: 'frank', kind: 'cli' });
    expect(await lookupToken(db, frank)).toMatchObject({ username: 'frank', status: 'valid', userActive: false, expiresAt: null });
    const nobody = await mintToken(db, { username: 'no-row-user', kind: 'cli', ttlSeconds: 60 });
    expect(await lookupToken(db, nobody)).toMatchObject({ status: 'valid', userActive: null, expiresAt: expect.any(Date) });
    await db.query("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = $1", [hashToken(nobody)]);
    expect((await lookupToken(db, nobody))!.status).toBe('expired');
    await revokeToken(db, frank);
    expect((await lookupToken(db, frank))!.status).toBe('revoked');
    expect(await lookupToken(db, 'sg_unknown')).toBeUndefined();
    expect(await lookupToken(db, 'not-ours')).toBeUndefined();
  });

  test('mint and revoke are audited: as the named actor, as spawngate for a server\'s token, never with the hash', async () => {
    const named = await withAuditActor(db, { actor: 'cli:operator', via: 'cli' }, (q) => mintToken(q, { username: 'gina', kind: 'cli', note: 'n' }));
    const server = await mintToken(db, { username: 'gina', kind: 'gateway', serverId });
    await withAuditActor(db, { actor: 'admin-token', via: 'api' }, (q) => revokeToken(q, named));
    await revokeServerTokens(db, serverId);
    const rows = await db.query<{ actor: string; action: string; details: Record<string, unknown> }>(
      "SELECT actor, action, details FROM audit_log WHERE target = 'gina' ORDER BY id",
    );
    expect(rows.map((r) => [r.action, r.actor, r.details.kind])).toEqual([
      ['token.mint', 'cli:operator', 'cli'],
      ['token.mint', 'spawngate', 'gateway'],
      ['token.revoke', 'admin-token', 'cli'],
      ['token.revoke', 'spawngate', 'gateway'],
    ]);
    const dump = JSON.stringify(rows);
    for (const t of [named, server]) {
      expect(dump).not.toContain(hashToken(t));
      expect(dump).not.toContain(t);
    }
  });
});
