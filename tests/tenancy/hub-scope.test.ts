/**
 * The hub token is for the hub's routes only (issue 11): with it the gateway (kernels, kernelspecs,
 * resources, the websocket) answers 403 naming the tokens to use instead, while every route the
 * RemoteSpawner calls (python-shim/spawngate/_client.py: /api/users/{user}/server[s/{name}][/progress]
 * and /api/users/{user}/profiles) keeps working. The admin token still reaches kernels.
 */
import request from 'supertest';
import { mintToken } from '../../src/db';
import { ADMIN, as, HUB, startEdgeService, upgrade, type EdgeService } from './tokens-service';

jest.setTimeout(90_000);

let edge: EdgeService;
let kernelId: string;
const api = () => request(edge.service.app!);

beforeAll(async () => {
  edge = await startEdgeService('hub-scope');
  const alice = await mintToken(edge.service.db, { username: 'alice', kind: 'gateway' });
  const res = await api().post('/api/kernels').set(as(alice)).send({ name: 'conda-env-tf-python3' });
  expect(res.status).toBe(201);
  kernelId = res.body.id as string;
});
afterAll(() => edge?.close());

const REFUSAL = /hub token is for the hub's server routes .*with the user's gateway token or the admin token/;

test('the hub token cannot list kernels', async () => {
  for (const url of ['/api/kernels', '/api/kernels?user=alice']) {
    const res = await api().get(url).set(as(HUB));
    expect([url, res.status]).toEqual([url, 403]);
    expect(res.body.message).toMatch(REFUSAL);
  }
});

test('the hub token cannot read, start, interrupt, restart or stop kernels', async () => {
  const calls = [
    api().get(`/api/kernels/${kernelId}`),
    api().post('/api/kernels').send({ name: 'conda-env-tf-python3', env: { KERNEL_USERNAME: 'alice' } }),
    api().post(`/api/kernels/${kernelId}/interrupt`),
    api().post(`/api/kernels/${kernelId}/restart`),
    api().delete(`/api/kernels/${kernelId}`),
  ];
  for (const call of calls) {
    const res = await call.set(as(HUB));
    expect(res.status).toBe(403);
    expect(res.body.message).toMatch(REFUSAL);
  }
  expect((await edge.service.kernels.list('alice')).map((k) => k.id)).toEqual([kernelId]);
});

test('the hub token cannot list kernelspecs or read their resources', async () => {
  for (const url of ['/api/kernelspecs', '/api/kernelspecs?user=alice', '/api/kernelspecs/conda-env-tf-python3?user=alice', '/kernelspecs/conda-env-tf-python3/kernel.json?user=alice']) {
    const res = await api().get(url).set(as(HUB));
    expect([url, res.status]).toEqual([url, 403]);
    expect(res.body.message).toMatch(REFUSAL);
  }
});

test("the hub token cannot open a kernel's websocket; the admin token can", async () => {
  const hub = await upgrade(edge.port, kernelId, as(HUB));
  expect(hub.status).toBe(403);
  expect(hub.body?.message).toMatch(REFUSAL);
  const admin = await upgrade(edge.port, kernelId, as(ADMIN));
  expect(admin.status).toBe(101);
  admin.ws!.close();
  const listed = await api().get('/api/kernels').set(as(ADMIN));
  expect(listed.body.map((k: { id: string }) => k.id)).toContain(kernelId);
});

test('the routes the RemoteSpawner calls keep working with the hub token', async () => {
  const profiles = await api().get('/api/users/alice/profiles').set(as(HUB));
  expect(profiles.status).toBe(200);
  expect(profiles.body.profiles.length).toBeGreaterThan(0);
  expect((await api().get('/api/users/alice/server').set(as(HUB))).status).toBe(404); // no server yet: the hub's "not running"
  expect((await api().get('/api/servers').set(as(HUB))).status).toBe(200);
  expect((await api().get('/api').set(as(HUB))).status).toBe(200);
  // …and a user's token still cannot use them.
  const alice = await mintToken(edge.service.db, { username: 'alice', kind: 'cli' });
  expect((await api().get('/api/users/alice/profiles').set(as(alice))).status).toBe(403);
});
