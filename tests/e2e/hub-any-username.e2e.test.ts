/**
 * Every name JupyterHub accepts, end to end: JupyterHub 3.0 spawns `ünïcode.user`, `zoë-łódź`, `a b`
 * and `o'neil` through spawngate; each single-user server (jupyter_server 1.23, which sends
 * `?user=<KERNEL_USERNAME>` unencoded to the gateway) lists its kernelspecs through the hub's proxy as a
 * browser would, and runs code in a kernel whose `KERNEL_USERNAME` is the exact name, in the conda
 * environment found in `SPAWNGATE_HOME_ROOT/<exact name>`.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createTestPostgres, type TestPostgres } from '../db/helpers';
import { connectWs, execute } from '../support/jupyter-ws';
import { startHub, startSpawngate, tmpDir, waitFor, type Hub, type Spawngate } from './harness';

jest.setTimeout(300_000);

// Names the DummyAuthenticator keeps as they are (it lower-cases).
const names = ['ünïcode.user', 'zoë-łódź', 'a b', "o'neil"];

/** The hub's own escaping of a name in URLs (`jupyterhub.utils.url_escape_path`: `quote(name, safe='@~')`). */
function hubEscape(name: string): string {
  return encodeURIComponent(name)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%40/g, '@');
}

const homes = tmpDir('sg-h15n-homes');
for (const name of names) {
  const envPrefix = path.join(homes, name, '.conda', 'envs', 'analysis');
  const kdir = path.join(envPrefix, 'share', 'jupyter', 'kernels', 'python3');
  fs.mkdirSync(path.join(envPrefix, 'bin'), { recursive: true });
  fs.symlinkSync('/usr/bin/python3', path.join(envPrefix, 'bin', 'python'));
  fs.mkdirSync(kdir, { recursive: true });
  fs.writeFileSync(
    path.join(kdir, 'kernel.json'),
    JSON.stringify({ argv: [path.join(envPrefix, 'bin', 'python'), '-m', 'ipykernel_launcher', '-f', '{connection_file}'], display_name: 'Analysis', language: 'python' }),
  );
}

let pg: TestPostgres;
let sg: Spawngate;
let hub: Hub;

beforeAll(async () => {
  pg = await createTestPostgres();
  sg = await startSpawngate({ env: { SPAWNGATE_DATABASE_URL: pg.url, SPAWNGATE_HOME_ROOT: homes } });
  await pg.db.query(
    `INSERT INTO experiments (name, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib, gpu_limit) VALUES ('climate', 1, 2, 256, 1024, 0)`,
  );
  await pg.db.query(`INSERT INTO environments (name, experiment_id) SELECT 'analysis', id FROM experiments WHERE name = 'climate'`);
  for (const name of names) {
    await pg.db.query('INSERT INTO users (username) VALUES ($1)', [name]);
    await pg.db.query(
      `INSERT INTO experiment_members (experiment_id, user_id) SELECT e.id, u.id FROM experiments e, users u WHERE e.name = 'climate' AND u.username = $1`,
      [name],
    );
  }
  hub = await startHub({ spawngateUrl: sg.url, hubToken: sg.hubToken });
});

afterAll(async () => {
  for (const name of names) await hub?.api('DELETE', `/users/${hubEscape(name)}/server`).catch(() => undefined);
  await hub?.stop();
  await sg?.stop();
  await pg?.drop();
});

test.each(names)('the hub spawns %j; its server lists kernelspecs through jupyter_server 1.23 and runs code as that exact user', async (name) => {
  const u = hubEscape(name);
  expect((await hub.api('POST', `/users/${u}`)).status).toBe(201);
  expect([201, 202]).toContain((await hub.api('POST', `/users/${u}/server`)).status);
  const user = await waitFor(
    `${name} ready`,
    async () => {
      const r = await hub.api<{ name: string; servers: Record<string, { ready: boolean; url: string }> }>('GET', `/users/${u}`);
      return r.body.servers?.['']?.ready ? r.body : undefined;
    },
    120_000,
  );
  // The hub's name is the identity: unchanged by the hub, and the server's URL is the hub's escape of it.
  expect(user.name).toBe(name);
  expect(user.servers['']!.url).toBe(`/user/${u}/`);

  const headers = { Authorization: `token ${hub.token}`, 'Content-Type': 'application/json' };
  const base = `${hub.url}/user/${u}`;
  const listing = await fetch(`${base}/api/kernelspecs`, { headers });
  expect(listing.status).toBe(200);
  const specs = (await listing.json()) as { kernelspecs: Record<string, unknown> };
  expect(Object.keys(specs.kernelspecs)).toEqual(['conda-env-analysis-python3']);

  const res = await fetch(`${base}/api/kernels`, { method: 'POST', headers, body: JSON.stringify({ name: 'conda-env-analysis-python3' }) });
  expect(res.status).toBe(201);
  const kernel = (await res.json()) as { id: string };
  const ws = await connectWs(`${base.replace('http', 'ws')}/api/kernels/${kernel.id}/channels`, { Authorization: `token ${hub.token}` });
  try {
    // jupyter_server 1.23 may drop a message sent before its own gateway connection is up: retry once.
    const code = "import os, sys, json; print(json.dumps([os.environ['KERNEL_USERNAME'], sys.executable, os.getcwd()]))";
    const out = await execute(ws, code, 30_000).catch(() => execute(ws, code, 60_000));
    const [kernelUser, executable] = JSON.parse(out.stdout.trim().split('\n').at(-1)!) as string[];
    expect(kernelUser).toBe(name);
    expect(executable).toBe(path.join(homes, name, '.conda', 'envs', 'analysis', 'bin', 'python'));
  } finally {
    ws.close();
  }
  expect((await fetch(`${base}/api/kernels/${kernel.id}`, { method: 'DELETE', headers })).status).toBe(204);
  expect([202, 204]).toContain((await hub.api('DELETE', `/users/${u}/server`)).status);
});
