/**
 * Concurrent launches. One `spawngate serve` on Postgres and Redis; 30 kernels requested at once must
 * all start, each on ports of its own. (Written when ports were picked by binding port 0 and closing:
 * concurrent launches were then handed the same port, and a kernel failed with EADDRINUSE or, worse,
 * bound some ports and talked to its neighbour on the others until the launch timed out. Kept as a
 * regression test for the port allocator.)
 */
import fs from 'node:fs';
import path from 'node:path';
import { tmpDir } from '../e2e/harness';
import { Cluster } from './helpers';

jest.setTimeout(180_000);

let c: Cluster;

beforeAll(async () => {
  // The port allocator serves TCP kernels on the host (ipc kernels have no ports to share), and one
  // user launches all 30 at once: the fair-share limits are raised for this test.
  const config = path.join(tmpDir('sg-rel-config'), 'config.yaml');
  fs.writeFileSync(config, 'kernels:\n  host_transport: tcp\n  max_kernels_per_user: 30\n  max_launches_in_flight_per_user: 30\n');
  // 30 Python kernels importing at once saturate both cores for ~20 s; at the default nice 10 they can
  // still starve spawngate and Postgres past their 2–5 s client timeouts (a 503, not a port clash). This
  // test is about the port allocator, so the kernels run at the lowest priority.
  c = await Cluster.create({ redis: true, env: { SPAWNGATE_CONFIG: config, SPAWNGATE_LOCAL_NICE: '19' } });
});

afterAll(async () => {
  await c?.close();
});

test('30 kernels launched at once all start, on distinct ports', async () => {
  const sg = await c.start('serve');
  const n = 30;
  const res = await Promise.all(Array.from({ length: n }, () => c.api<{ id: string; message?: string }>(sg, 'POST', '/api/kernels', c.launchBody(undefined, { KERNEL_LAUNCH_TIMEOUT: '30' }), { timeoutMs: 150_000 })));
  const failures = res.filter((r) => r.status !== 201).map((r) => `${r.status}: ${String(r.body.message).split('\n').slice(-1)[0]}`);
  const rows = await c.pg.db.query<{ id: string; ports: Record<string, number> }>('SELECT id::text, ports FROM kernels');
  const owners = new Map<number, string[]>();
  for (const r of rows) for (const p of Object.values(r.ports)) owners.set(p, [...(owners.get(p) ?? []), r.id.slice(0, 8)]);
  const shared = [...owners].filter(([, ids]) => ids.length > 1).map(([port, ids]) => `${port}: ${ids.join(', ')}`);
  expect({ failures, shared }).toEqual({ failures: [], shared: [] });
});
