/**
 * Metric route labels come from the route express matched (mount path + pattern): no user names or
 * ids in labels, one label per route, 'unmatched' for paths no route answers.
 */
import request from 'supertest';
import { mintToken } from '../../src/db';
import { ADMIN, as, HUB, startEdgeService, type EdgeService } from '../tenancy/tokens-service';

jest.setTimeout(60_000);

let edge: EdgeService;
beforeAll(async () => {
  edge = await startEdgeService('route-labels');
});
afterAll(() => edge?.close());

test('labels are the matched route patterns of the hub, gateway and admin routers', async () => {
  const api = () => request(edge.service.app!);
  const alice = await mintToken(edge.service.db, { username: 'alice', kind: 'cli' });
  await api().get('/api/kernels/00000000-0000-0000-0000-000000000000').set(as(alice)).expect(404);
  await api().get('/api/kernelspecs/conda-env-tf-python3').set(as(alice)).expect(200);
  await api().get('/kernelspecs/conda-env-tf-python3/kernel.json').set(as(alice)).expect(200);
  await api().get('/api/admin/experiments/genomics').set(as(ADMIN)).expect(200);
  await api().get('/api/admin/experiments/genomics/members').set(as(ADMIN)).expect(200);
  await api().get('/api/users/alice/servers/lab/progress').set(as(HUB)).expect(404);
  await api().get('/api/users/alice/profiles').set(as(HUB)).expect(200);
  await api().get('/no/such/alice/path').set(as(ADMIN)).expect(404);
  const text = (await api().get('/metrics')).text;
  const labels = new Set([...text.matchAll(/spawngate_http_request_duration_seconds_count\{[^}]*route="([^"]*)"/g)].map((m) => m[1]));
  expect([...labels]).toEqual(
    expect.arrayContaining([
      '/api/kernels/:kernel_id',
      '/api/kernelspecs/:name',
      '/kernelspecs/:name/:resource',
      '/api/admin/experiments/:name',
      '/api/admin/experiments/:name/members',
      '/api/users/:user/servers/:name/progress',
      '/api/users/:user/profiles',
      'unmatched',
    ]),
  );
  for (const l of labels) expect(l).not.toMatch(/alice|genomics|0000/);
});
