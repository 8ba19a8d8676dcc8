/**
 * The whole seed system: JupyterHub spawns alice's server through spawngate; that server's notebook
 * API starts a kernel through spawngate's gateway in alice's conda environment with her experiment's
 * limits, and code runs on it — all reached through the hub's proxy.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createTestPostgres, type TestPostgres } from '../db/helpers';
import { connectWs, execute } from '../support/jupyter-ws';
import { startHub, startSpawngate, tmpDir, waitFor, type Hub, type Spawngate } from './harness';

jest.setTimeout(120_000);

const homes = tmpDir('sg-homes');
const envPrefix = path.join(homes, 'alice', '.conda', 'envs', 'analysis');
const kdir = path.join(envPrefix, 'share', 'jupyter', 'kernels', 'python3');
fs.mkdirSync(path.join(envPrefix, 'bin'), { recursive: true });
// The environment's own interpreter: a real Python with ipykernel, reached through the env's bin/.
fs.symlinkSync('/usr/bin/python3', path.join(envPrefix, 'bin', 'python'));
fs.mkdirSync(kdir, { recursive: true });
fs.writeFileSync(path.join(kdir, 'kernel.json'), JSON.stringify({ argv: [path.join(envPrefix, 'bin', 'python'), '-m', 'ipykernel_launcher', '-f', '{connection_file}'], display_name: 'Analysis', language: 'python' }));

let pg: TestPostgres;
let sg: Spawngate;
let hub: Hub;

beforeAll(async () => {
  pg = await createTestPostgres();
  sg = await startSpawngate({ env: { SPAWNGATE_DATABASE_URL: pg.url, SPAWNGATE_HOME_ROOT: homes } });
  await pg.db.query(`
    INSERT INTO users (username) VALUES ('alice');
    INSERT INTO experiments (name, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib, gpu_limit) VALUES ('climate', 1, 4, 1024, 8192, 0);
    INSERT INTO environments (name, experiment_id) SELECT 'analysis', id FROM experiments WHERE name = 'climate';
    INSERT INTO experiment_members (experiment_id, user_id) SELECT e.id, u.id FROM experiments e, users u WHERE e.name = 'climate' AND u.username = 'alice';
  `);
  hub = await startHub({ spawngateUrl: sg.url, hubToken: sg.hubToken });
});

afterAll(async () => {
  await hub?.api('DELETE', '/users/alice/server');
  await hub?.stop();
  await sg?.stop();
  await pg?.drop();
});

test("a notebook kernel of a hub-spawned server runs in the user's environment with the experiment's limits", async () => {
  await hub.api('POST', '/users/alice');
  await hub.api('POST', '/users/alice/server');
  await waitFor('alice ready', async () => (await hub.api<{ servers: Record<string, { ready: boolean }> }>('GET', '/users/alice')).body.servers?.['']?.ready, 60000);

  const headers = { Authorization: `token ${hub.token}`, 'Content-Type': 'application/json' };
  const specs = (await (await fetch(`${hub.url}/user/alice/api/kernelspecs`, { headers })).json()) as { kernelspecs: Record<string, unknown> };
  expect(Object.keys(specs.kernelspecs)).toEqual(['conda-env-analysis-python3']);

  const res = await fetch(`${hub.url}/user/alice/api/kernels`, { method: 'POST', headers, body: JSON.stringify({ name: 'conda-env-analysis-python3' }) });
  expect(res.status).toBe(201);
  const kernel = (await res.json()) as { id: string };
  const ws = await connectWs(`${hub.url.replace('http', 'ws')}/user/alice/api/kernels/${kernel.id}/channels`, { Authorization: `token ${hub.token}` });
  try {
    const out = await execute(ws, "import os, sys; print(sys.executable, os.environ['KERNEL_CPUS_LIMIT'], os.environ['KERNEL_MEMORY'], os.environ['KERNEL_USERNAME'])");
    expect(out.stdout.trim()).toBe(`${path.join(envPrefix, 'bin', 'python')} 4 1024Mi alice`);
  } finally {
    ws.close();
  }
  const del = await fetch(`${hub.url}/user/alice/api/kernels/${kernel.id}`, { method: 'DELETE', headers });
  expect(del.status).toBe(204);
});
