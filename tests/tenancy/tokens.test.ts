/**
 * Tokens a lab can trust (issue 11): a deactivated user is refused everywhere at once, revoked and
 * expired tokens are refused with the reason, minting and revoking are audited, and listings never
 * show a secret. Against a real service on Postgres with real ipykernel kernels.
 */
import request from 'supertest';
import { hashToken, mintToken } from '../../src/db';
import { ADMIN, as, HUB, startEdgeService, upgrade, type EdgeService } from './tokens-service';

jest.setTimeout(90_000);

let edge: EdgeService;
const api = () => request(edge.service.app!);

beforeAll(async () => {
  edge = await startEdgeService('tokens');
});
afterAll(() => edge?.close());

async function launch(token: string): Promise<string> {
  const res = await api().post('/api/kernels').set(as(token)).send({ name: 'conda-env-tf-python3' });
  expect([res.status, res.body.message]).toEqual([201, undefined]);
  return res.body.id as string;
}

describe("a deactivated user's gateway token", () => {
  test('is refused over REST, the websocket and for new launches at once, and works again once reactivated', async () => {
    const alice = await mintToken(edge.service.db, { username: 'alice', kind: 'gateway' });
    const id = await launch(alice);
    const open = await upgrade(edge.port, id, as(alice));
    expect(open.status).toBe(101);
    open.ws!.close();

    // Plain admin SQL, no restart: the very next request sees it.
    await edge.sql("UPDATE users SET active = false WHERE username = 'alice'");
    const list = await api().get('/api/kernels').set(as(alice));
    expect(list.status).toBe(403);
    expect(list.body.message).toMatch(/user 'alice' is deactivated/);
    expect((await api().get(`/api/kernels/${id}`).set(as(alice))).status).toBe(403);
    const ws = await upgrade(edge.port, id, as(alice));
    expect(ws.status).toBe(403);
    expect(ws.body?.message).toMatch(/user 'alice' is deactivated/);
    const again = await api().post('/api/kernels').set(as(alice)).send({ name: 'conda-env-tf-python3' });
    expect(again.status).toBe(403);
    expect(again.body.message).toMatch(/deactivated/);
    expect((await edge.service.kernels.list('alice')).map((k) => k.id)).toEqual([id]);

    await edge.sql("UPDATE users SET active = true WHERE username = 'alice'");
    expect((await api().get('/api/kernels').set(as(alice))).status).toBe(200);
    await api().delete(`/api/kernels/${id}`).set(as(alice));
  });

  test('gets no kernel through the admin token and no server through the hub token either', async () => {
    await edge.sql("UPDATE users SET active = false WHERE username = 'bob'");
    try {
      const viaAdmin = await api().post('/api/kernels').set(as(ADMIN)).send({ name: 'conda-env-tf-python3', env: { KERNEL_USERNAME: 'bob' } });
      expect(viaAdmin.status).toBe(403);
      expect(viaAdmin.body.message).toMatch(/user 'bob' is deactivated/);
      const spawn = await api().post('/api/users/bob/server').set(as(HUB)).send({});
      expect(spawn.status).toBe(403);
      expect(spawn.body.message).toMatch(/user 'bob' is deactivated/);
      expect(await edge.service.kernels.list('bob')).toEqual([]);
    } finally {
      await edge.sql("UPDATE users SET active = true WHERE username = 'bob'");
    }
  });
});

describe('revoked and expired tokens', () => {
  test('a token revoked through the admin API is refused over REST and the websocket, with the reason', async () => {
    const bob = await mintToken(edge.service.db, { username: 'bob', kind: 'cli', note: 'to revoke' });
    const id = await launch(bob);
    const listed = await api().get('/api/admin/tokens?user=bob').set(as(ADMIN));
    expect(listed.status).toBe(200);
    const entry = (listed.body.tokens as Array<{ id: number; note: string | null }>).find((t) => t.note === 'to revoke')!;
    const revoked = await api().delete(`/api/admin/tokens/${entry.id}`).set(as(ADMIN));
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ id: entry.id, username: 'bob', state: 'revoked' });

    const rest = await api().get('/api/kernels').set(as(bob));
    expect(rest.status).toBe(401);
    expect(rest.body.message).toMatch(/revoked/);
    const ws = await upgrade(edge.port, id, as(bob));
    expect(ws.status).toBe(401);
    expect(ws.body?.message).toMatch(/revoked/);
    await api().delete(`/api/kernels/${id}`).set(as(ADMIN));
  });

  test('an expired token is refused (401) saying when it expired', async () => {
    const token = await mintToken(edge.service.db, { username: 'alice', kind: 'cli', ttlSeconds: 3600 });
    expect((await api().get('/api/kernels').set(as(token))).status).toBe(200);
    await edge.sql("UPDATE api_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = $1", [hashToken(token)]);
    const res = await api().get('/api/kernels').set(as(token));
    expect(res.status).toBe(401);
    expect(res.body.message).toMatch(/this token expired at \d{4}-\d\d-\d\dT/);
  });

  test('an unknown token is a plain 401', async () => {
    const res = await api().get('/api/kernels').set(as('sg_never-minted-token'));
    expect([res.status, res.body.message]).toEqual([401, 'invalid token']);
  });
});

describe('administration of tokens', () => {
  test('the listing shows metadata only, and needs the admin token', async () => {
    const secret = await mintToken(edge.service.db, { username: 'alice', kind: 'cli', note: 'listed' });
    expect((await api().get('/api/admin/tokens').set(as(secret))).status).toBe(403);
    expect((await api().get('/api/admin/tokens').set(as(HUB))).status).toBe(403);
    const res = await api().get('/api/admin/tokens?user=alice&all=true').set(as(ADMIN));
    expect(res.status).toBe(200);
    const text = JSON.stringify(res.body);
    expect(text).not.toContain(secret);
    expect(text).not.toContain(hashToken(secret));
    expect(res.body.tokens.find((t: { note: string }) => t.note === 'listed')).toMatchObject({ username: 'alice', kind: 'cli', state: 'active' });
  });

  test('mint and revoke are in the audit log with the acting administrator, without the secret', async () => {
    const token = await mintToken(edge.service.db, { username: 'bob', kind: 'cli', note: 'audited' });
    const [row] = (await edge.sql('SELECT id FROM api_tokens WHERE token_hash = $1', [hashToken(token)])) as Array<{ id: string }>;
    const id = row!.id;
    await api().delete(`/api/admin/tokens/${id}`).set(as(ADMIN)).expect(200);
    const audit = await api().get('/api/admin/audit?action=token.&target=bob').set(as(ADMIN));
    const mine = (audit.body.entries as Array<{ action: string; actor: string; details: { token_id: number } }>).filter((e) => e.details.token_id === Number(id));
    expect(mine.map((e) => [e.action, e.actor])).toEqual([
      ['token.revoke', 'admin-token'],
      ['token.mint', expect.stringMatching(/^sql:/)],
    ]);
    expect(JSON.stringify(audit.body)).not.toContain(hashToken(token));
  });

  test('DELETE /api/admin/users/{username}/tokens revokes all of them; the OpenAPI document lists the routes', async () => {
    const a = await mintToken(edge.service.db, { username: 'bob', kind: 'cli' });
    const b = await mintToken(edge.service.db, { username: 'bob', kind: 'gateway' });
    const res = await api().delete('/api/admin/users/bob/tokens').set(as(ADMIN));
    expect(res.status).toBe(200);
    expect(res.body.revoked).toBeGreaterThanOrEqual(2);
    for (const t of [a, b]) expect((await api().get('/api/kernels').set(as(t))).status).toBe(401);
    const doc = (await api().get('/api/openapi.json')).body;
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/admin/tokens', '/api/admin/tokens/{id}', '/api/admin/users/{username}/tokens']));
  });
});
