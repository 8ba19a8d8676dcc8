/**
 * A separate `spawngate worker` with SPAWNGATE_WORKER_METRICS_PORT serves /healthz, /readyz and
 * /metrics, and nothing else: a server start it ran shows in its own series (spawns, queue wait,
 * start overhead), which the API (`serve --no-workers`) never sees. It does not repeat the shared
 * gauges the API reports (queue jobs, usage). Real processes, Postgres and a throwaway Redis.
 */
import { Cluster, freePort, type Node } from './helpers';

jest.setTimeout(120_000);

let c: Cluster;
let api: Node;
let worker: Node;
let metricsUrl: string;

beforeAll(async () => {
  // The built-in default profile runs this: a plain web server answers the readiness check.
  c = await Cluster.create({ redis: true, env: { SPAWNGATE_SERVER_COMMAND: '/usr/bin/python3 -m http.server {port} --bind 127.0.0.1' } });
  api = await c.start('api');
  const port = await freePort();
  worker = await c.start('worker', { SPAWNGATE_WORKER_METRICS_PORT: String(port) });
  metricsUrl = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  await c?.close();
});

/** The value of one sample of the Prometheus text, or undefined without it. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `) || (labels === '' && l.startsWith(`${name}{`)));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

test('the worker serves its probes and its own job metrics, and nothing else', async () => {
  expect(worker.output()).toMatch(/"metrics_port":\d+/);
  expect((await fetch(`${metricsUrl}/healthz`)).status).toBe(200);
  const ready = await fetch(`${metricsUrl}/readyz`);
  expect([ready.status, await ready.json()]).toEqual([200, { status: 'ok', checks: { database: 'ok', queue: 'ok' } }]);
  const other = await fetch(`${metricsUrl}/api/kernels`, { headers: { Authorization: `token ${c.adminToken}` } });
  expect(other.status).toBe(404);
  expect(((await other.json()) as { message: string }).message).toMatch(/a worker serves \/healthz, \/readyz and \/metrics only/);

  const hub = { token: c.hubToken };
  expect((await c.api(api, 'POST', '/api/users/alice/server', {}, hub)).status).toBe(202);
  const ready2 = await c.api<{ state: string; message: string | null }>(api, 'GET', '/api/users/alice/server?wait=ready&timeout=60', undefined, hub);
  expect([ready2.body.state, ready2.body.message]).toEqual(['running', null]);

  const fromWorker = await (await fetch(`${metricsUrl}/metrics`)).text();
  const fromApi = await (await fetch(`${api.url}/metrics`)).text();
  // The start ran in the worker: its series are there, not on the API.
  expect(sample(fromWorker, 'spawngate_spawns_total', '{outcome="ready"}')).toBe(1);
  expect(sample(fromWorker, 'spawngate_queue_wait_seconds_count', '{job="server.start"}')).toBe(1);
  expect(sample(fromWorker, 'spawngate_start_overhead_seconds_count')).toBe(1);
  expect(sample(fromApi, 'spawngate_spawns_total', '{outcome="ready"}')).toBeUndefined();
  expect(fromWorker).toMatch(/^spawngate_process_cpu_seconds_total /m);
  // Shared gauges come from the API only.
  expect(sample(fromApi, 'spawngate_queue_jobs')).toBeDefined();
  expect(sample(fromWorker, 'spawngate_queue_jobs')).toBeUndefined();
  expect(fromWorker).not.toMatch(/spawngate_usage_up/);
  expect(fromApi).toMatch(/spawngate_usage_up/);

  expect((await c.api(api, 'DELETE', '/api/users/alice/server', undefined, hub)).status).toBeLessThan(300);
});
