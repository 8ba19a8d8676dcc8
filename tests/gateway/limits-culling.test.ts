/**
 * Concurrency limits (launches in flight counted), the memory limit inside a local kernel, the
 * default profile for unregistered environments, and EG-style idle culling.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import type WebSocket from 'ws';
import { loadConfig } from '../../src/config';
import { mintToken } from '../../src/db';
import { createService, type Service } from '../../src/compose';
import { connectWs, execute } from '../support/jupyter-ws';

jest.setTimeout(120_000);

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-lim-'));
const homes = path.join(root, 'homes');
for (const [user, env] of [['alice', 'tf'], ['alice', 'scratch'], ['carol', 'tf']] as const) {
  const dir = path.join(homes, user, '.conda', 'envs', env, 'share', 'jupyter', 'kernels', 'python3');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'kernel.json'), JSON.stringify({ argv: ['/usr/bin/python3', '-m', 'ipykernel_launcher', '-f', '{connection_file}'], display_name: env, language: 'python' }));
}
fs.writeFileSync(
  path.join(root, 'config.yaml'),
  `profiles:
  - slug: small
    display_name: Small
    resources: { cpu_limit: 1, memory_limit_mib: 768 }
kernels:
  max_kernels_per_user: 2
  max_kernels_per_experiment: 3
  unregistered_environments: { profile: small }
`,
);
// Culling runs in a second service so its 2 s idle timeout cannot cull the other tests' kernels.
fs.writeFileSync(path.join(root, 'culling.yaml'), 'kernels:\n  unregistered_environments: { profile: small }\n  cull_idle_timeout: 2\n  cull_interval: 1\nprofiles:\n  - slug: small\n    display_name: Small\n');

let service: Service;
let port: number;
const tokens: Record<string, string> = {};

beforeAll(async () => {
  service = await createService(loadConfig({ SPAWNGATE_DATA_DIR: path.join(root, 'data'), SPAWNGATE_HOME_ROOT: homes, SPAWNGATE_LOCAL_SHARED_IDENTITY: '1', SPAWNGATE_CONFIG: path.join(root, 'config.yaml'), SPAWNGATE_PORT: '0' }));
  port = await service.listen();
  await service.db.query(`
    INSERT INTO users (username) VALUES ('alice'), ('carol');
    INSERT INTO experiments (name, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib) VALUES ('genomics', 0.25, 1, 256, 1024);
    INSERT INTO environments (name, experiment_id) SELECT 'tf', id FROM experiments WHERE name = 'genomics';
    INSERT INTO experiment_members (experiment_id, user_id) SELECT e.id, u.id FROM experiments e, users u WHERE e.name = 'genomics';
  `);
  for (const u of ['alice', 'carol']) tokens[u] = await mintToken(service.db, { username: u, kind: 'cli' });
});

// The culling test's service and websocket: closed here so that a failing assertion leaves no kernel running.
let culling: Service | undefined;
let ws: WebSocket | undefined;

afterAll(async () => {
  ws?.close();
  // Closing a service leaves its workloads running (by design): shut every kernel down first.
  for (const s of [service, culling]) {
    if (!s) continue;
    for (const k of await s.kernels.list(undefined)) await s.kernels.shutdown(undefined, k.id);
    await s.close();
  }
});

const launch = (user: string, name = 'conda-env-tf-python3') => request(service.app!).post('/api/kernels').set({ Authorization: `token ${tokens[user]}` }).send({ name });
const shutdownAll = async (): Promise<void> => {
  for (const k of await service.kernels.list(undefined)) await service.kernels.shutdown(undefined, k.id);
};

test('per-user limit counts launches in flight: 3 concurrent launches, the limit is 2', async () => {
  const results = await Promise.all([launch('alice'), launch('alice'), launch('alice')]);
  // A fair-share limit answers 429 with Retry-After and names the setting (issue 11; it was 403).
  expect(results.map((r) => r.status).sort()).toEqual([201, 201, 429]);
  const refused = results.find((r) => r.status === 429)!;
  expect(refused.body.message).toBe("user 'alice' already has 2 kernels running or starting (limit 2, kernels.max_kernels_per_user)");
  expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
  await shutdownAll();
});

test('per-experiment limit across users names experiment and environment', async () => {
  expect((await launch('alice')).status).toBe(201);
  expect((await launch('alice')).status).toBe(201);
  expect((await launch('carol')).status).toBe(201);
  const fourth = await launch('carol');
  expect(fourth.status).toBe(429);
  expect(fourth.body.message).toBe("experiment 'genomics' already has 3 kernels running or starting (limit 3, kernels.max_kernels_per_experiment; environment 'tf')");
  await shutdownAll();
});

test("the memory limit is applied to a local kernel (address-space rlimit) and its KERNEL_* variables", async () => {
  const { body } = await launch('alice');
  const ws = await connectWs(`ws://127.0.0.1:${port}/api/kernels/${body.id}/channels`, { Authorization: `token ${tokens.alice}` });
  const out = await execute(ws, "import resource, os; print(resource.getrlimit(resource.RLIMIT_AS)[0] // 2**20, os.environ['KERNEL_MEMORY_LIMIT'])");
  expect(out.stdout.trim()).toBe('1024 1024Mi');
  const big = await execute(ws, "b = bytearray(2 * 1024 * 1024 * 1024)");
  expect(big.reply.content.ename).toBe('MemoryError');
  ws.close();
  await shutdownAll();
});

test('an unregistered environment gets the configured default profile', async () => {
  const res = await launch('alice', 'conda-env-scratch-python3');
  expect(res.status).toBe(201);
  const ws = await connectWs(`ws://127.0.0.1:${port}/api/kernels/${res.body.id}/channels`, { Authorization: `token ${tokens.alice}` });
  const out = await execute(ws, "import os; print(os.environ.get('KERNEL_CPUS_LIMIT'), os.environ.get('KERNEL_MEMORY_LIMIT'))");
  expect(out.stdout.trim()).toBe('1 768Mi');
  ws.close();
  await shutdownAll();
});

test('the repeatable cull job shuts down idle kernels without connections; a connected one is kept', async () => {
  culling = await createService(loadConfig({ SPAWNGATE_DATA_DIR: path.join(root, 'data-culling'), SPAWNGATE_HOME_ROOT: homes, SPAWNGATE_LOCAL_SHARED_IDENTITY: '1', SPAWNGATE_CONFIG: path.join(root, 'culling.yaml'), SPAWNGATE_PORT: '0' }));
  const cs = culling;
  const cullingPort = await cs.listen();
  const token = await mintToken(cs.db, { username: 'alice', kind: 'cli' });
  const auth = { Authorization: `token ${token}` };
  const start = () => request(cs.app!).post('/api/kernels').set(auth).send({ name: 'conda-env-scratch-python3' });
  const model = (id: string) => request(cs.app!).get(`/api/kernels/${id}`).set(auth);
  const idle = (await start()).body.id as string;
  // The cull deadline is measured from the kernel's own last_activity, not from when this test gets round
  // to polling: starting the second kernel and its websocket can take a second on a loaded CI machine.
  const idleSince = Date.parse((await model(idle)).body.last_activity as string);
  const watched = (await start()).body.id as string;
  ws = await connectWs(`ws://127.0.0.1:${cullingPort}/api/kernels/${watched}/channels`, auth);
  // The websocket is counted in the database by a write that follows the upgrade; a model read right
  // after 'open' can come first. Wait for the count (the culler reads the same count).
  for (const t1 = Date.now(); (await model(watched)).body.connections !== 1; ) {
    if (Date.now() - t1 > 10_000) throw new Error('the open websocket was not counted within 10 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  const t0 = Date.now();
  for (;;) {
    if ((await model(idle)).status === 404) break;
    if (Date.now() - t0 > 10_000) throw new Error('idle kernel was not culled within 10 s (timeout 2 s, interval 1 s)');
    await new Promise((r) => setTimeout(r, 250));
  }
  expect(Date.now() - idleSince).toBeGreaterThanOrEqual(2000);
  // The connected kernel must itself have been idle past the timeout for a few cull passes to show it is kept.
  const watchedSince = Date.parse((await model(watched)).body.last_activity as string);
  while (Date.now() - watchedSince < 4000) await new Promise((r) => setTimeout(r, 250));
  const kept = await model(watched);
  expect(kept.status).toBe(200);
  expect(kept.body.connections).toBe(1);
});
