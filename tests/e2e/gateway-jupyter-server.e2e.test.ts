/**
 * Debian's jupyter_server 1.23 as the gateway client, configured only with JUPYTER_GATEWAY_URL,
 * JUPYTER_GATEWAY_AUTH_TOKEN and KERNEL_USERNAME: through *its* REST API and websocket a kernel starts
 * in the user's environment with the experiment's limits, runs code, is interrupted, restarted and
 * shut down. spawngate runs as the real CLI on Postgres; the quota is set up by plain SQL.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type WebSocket from 'ws';
import { createTestPostgres, type TestPostgres } from '../db/helpers';
import { connectWs, execute } from '../support/jupyter-ws';
import { freePort, ROOT, startProcess, startSpawngate, tmpDir, waitFor, type Proc, type Spawngate } from './harness';

jest.setTimeout(120_000);

const homes = tmpDir('sg-homes');
const kdir = path.join(homes, 'alice', '.conda', 'envs', 'tf', 'share', 'jupyter', 'kernels', 'python3');
fs.mkdirSync(kdir, { recursive: true });
fs.writeFileSync(path.join(kdir, 'kernel.json'), JSON.stringify({ argv: ['/usr/bin/python3', '-m', 'ipykernel_launcher', '-f', '{connection_file}'], display_name: 'TF', language: 'python' }));

let pg: TestPostgres;
let sg: Spawngate;
let js: Proc;
let jsUrl: string;
const JS_TOKEN = 'jupyter-server-token-0123456789';

async function jsApi(method: string, p: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${jsUrl}${p}`, { method, headers: { Authorization: `token ${JS_TOKEN}`, 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

beforeAll(async () => {
  pg = await createTestPostgres();
  sg = await startSpawngate({ env: { SPAWNGATE_DATABASE_URL: pg.url, SPAWNGATE_HOME_ROOT: homes } });
  await pg.db.query(`
    INSERT INTO users (username) VALUES ('alice');
    INSERT INTO experiments (name, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib) VALUES ('genomics', 0.5, 2, 512, 4096);
    INSERT INTO environments (name, experiment_id) SELECT 'tf', id FROM experiments WHERE name = 'genomics';
    INSERT INTO experiment_members (experiment_id, user_id) SELECT e.id, u.id FROM experiments e, users u WHERE e.name = 'genomics' AND u.username = 'alice';
  `);
  const token = execFileSync(process.execPath, [path.join(ROOT, 'bin', 'spawngate.js'), 'token', '--user', 'alice'], { env: sg.env }).toString().trim();
  const port = await freePort();
  const home = tmpDir('sg-js-home');
  js = startProcess('/usr/bin/python3', ['-m', 'jupyter_server', '--allow-root', '--no-browser', `--port=${port}`, '--ServerApp.ip=127.0.0.1', `--ServerApp.token=${JS_TOKEN}`], {
    env: {
      PATH: '/usr/bin:/bin',
      HOME: home,
      JUPYTER_RUNTIME_DIR: path.join(home, 'runtime'),
      JUPYTER_GATEWAY_URL: sg.url,
      JUPYTER_GATEWAY_AUTH_TOKEN: token,
      KERNEL_USERNAME: 'alice',
      // jupyter_server 1.23 forwards its whole environment as the kernel env: this must be filtered.
      JUPYTERHUB_API_TOKEN: 'hub-secret-that-must-not-reach-kernels',
    },
    cwd: home,
  });
  jsUrl = `http://127.0.0.1:${port}`;
  await waitFor('jupyter_server', async () => (await fetch(`${jsUrl}/api/status`, { headers: { Authorization: `token ${JS_TOKEN}` } })).ok, 30000, 200);
});

afterAll(async () => {
  await js?.stop();
  await sg?.stop();
  await pg?.drop();
});

test('start, execute, interrupt, restart and shut down a kernel through jupyter_server 1.23', async () => {
  const specs = await jsApi('GET', '/api/kernelspecs');
  expect(Object.keys(specs.body.kernelspecs as object)).toContain('conda-env-tf-python3');

  const started = await jsApi('POST', '/api/kernels', { name: 'conda-env-tf-python3' });
  expect(started.status).toBe(201);
  const id = String(started.body.id);
  const ws: WebSocket = await connectWs(`${jsUrl.replace('http', 'ws')}/api/kernels/${id}/channels?token=${JS_TOKEN}`);
  try {
    const env = await execute(ws, "import os; print(os.environ.get('KERNEL_CPUS'), os.environ.get('KERNEL_MEMORY_LIMIT'), os.environ.get('JUPYTERHUB_API_TOKEN'), os.environ.get('KERNEL_USERNAME'))");
    expect(env.stdout.trim()).toBe('0.5 4096Mi None alice');
    expect((await execute(ws, '6*7')).results).toEqual(['42']);

    const sleeping = execute(ws, 'import time; time.sleep(60)', 40000);
    await new Promise((r) => setTimeout(r, 1000));
    expect((await jsApi('POST', `/api/kernels/${id}/interrupt`)).status).toBe(204);
    expect((await sleeping).reply.content.ename).toBe('KeyboardInterrupt');

    expect((await execute(ws, 'y = 1')).reply.content.status).toBe('ok');
    const restarted = await jsApi('POST', `/api/kernels/${id}/restart`);
    expect(restarted.status).toBe(200);
    await waitFor('kernel answers after restart', async () => (await execute(ws, "print('y' in globals())", 5000)).stdout.trim() === 'False', 30000, 500);
  } finally {
    ws.close();
  }
  expect((await jsApi('DELETE', `/api/kernels/${id}`)).status).toBe(204);
  const left = await fetch(`${sg.url}/api/kernels`, { headers: { Authorization: `token ${sg.adminToken}` } });
  expect(await left.json()).toEqual([]);
  // The hub secret jupyter_server forwarded never reached spawngate's log either.
  expect(sg.output()).not.toContain('hub-secret-that-must-not-reach-kernels');
});
