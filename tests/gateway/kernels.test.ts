/**
 * The kernel gateway in-process against real ipykernel: launch with quotas from SQL, run code over the
 * websocket, interrupt, restart, shut down; refusals name environment and experiment.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import type WebSocket from 'ws';
import { loadConfig } from '../../src/config';
import { mintToken } from '../../src/db';
import { createService, type Service } from '../../src/compose';
import { connectWs, execute, type Msg } from '../support/jupyter-ws';

jest.setTimeout(90_000);

const HUB = 'hub-token-for-tests-0123456789';
const ADMIN = 'admin-token-for-tests-0123456789';
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-gw-'));
const homes = path.join(root, 'homes');

function condaKernel(user: string, envName: string, extra: Record<string, unknown> = {}): void {
  const dir = path.join(homes, user, '.conda', 'envs', envName, 'share', 'jupyter', 'kernels', 'python3');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'kernel.json'),
    JSON.stringify({ argv: ['/usr/bin/python3', '-m', 'ipykernel_launcher', '-f', '{connection_file}'], display_name: `Python (${envName})`, language: 'python', ...extra }),
  );
}

condaKernel('alice', 'tf');
condaKernel('alice', 'closed');
condaKernel('alice', 'stray');
condaKernel('bob', 'tf');

let service: Service;
let port: number;
let alice: string;
let bob: string;

async function sql(text: string): Promise<void> {
  await service.db.query(text);
}

beforeAll(async () => {
  service = await createService(
    loadConfig({
      SPAWNGATE_DATA_DIR: path.join(root, 'data'),
      SPAWNGATE_HUB_TOKEN: HUB,
      SPAWNGATE_ADMIN_TOKEN: ADMIN,
      SPAWNGATE_HOME_ROOT: homes,
      SPAWNGATE_PORT: '0',
      // The homes here are made by root (the test); the gateway, not workload identity, is under test.
      SPAWNGATE_LOCAL_ALLOW_ROOT: '1',
    }),
  );
  port = await service.listen();
  await sql(`
    INSERT INTO users (username) VALUES ('alice'), ('bob');
    INSERT INTO experiments (name, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib, gpu_limit) VALUES ('genomics', 0.5, 2, 512, 4096, 1);
    INSERT INTO experiments (name, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib, active) VALUES ('archive', 1, 1, 256, 256, false);
    INSERT INTO environments (name, experiment_id) SELECT 'tf', id FROM experiments WHERE name = 'genomics';
    INSERT INTO environments (name, experiment_id) SELECT 'closed', id FROM experiments WHERE name = 'archive';
    INSERT INTO experiment_members (experiment_id, user_id) SELECT e.id, u.id FROM experiments e, users u WHERE e.name = 'genomics' AND u.username = 'alice';
    INSERT INTO experiment_members (experiment_id, user_id) SELECT e.id, u.id FROM experiments e, users u WHERE e.name = 'archive' AND u.username = 'alice';
  `);
  alice = await mintToken(service.db, { username: 'alice', kind: 'cli' });
  bob = await mintToken(service.db, { username: 'bob', kind: 'cli' });
});

afterAll(async () => {
  for (const k of await service.kernels.list(undefined)) await service.kernels.shutdown(undefined, k.id);
  await service.close();
});

const as = (token: string) => ({ Authorization: `token ${token}` });

function connect(kernelId: string, token: string): Promise<WebSocket> {
  return connectWs(`ws://127.0.0.1:${port}/api/kernels/${kernelId}/channels`, as(token));
}

test('a member launches in their environment with the experiment limits, runs code, shuts down', async () => {
  const res = await request(service.app!).post('/api/kernels').set(as(alice)).send({ name: 'conda-env-tf-python3', env: { KERNEL_USERNAME: 'alice', JUPYTERHUB_API_TOKEN: 'must-not-pass', KERNEL_EXTRA: 'ok' } });
  expect(res.status).toBe(201);
  expect(res.body).toMatchObject({ name: 'conda-env-tf-python3', execution_state: 'starting', connections: 0 });
  expect(res.body.id).toMatch(/^[0-9a-f-]{36}$/);
  expect(res.body.last_activity).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  const id = res.body.id as string;

  const ws = await connect(id, alice);
  const out = await execute(ws, "import os; print(os.environ.get('KERNEL_CPUS'), os.environ.get('KERNEL_MEMORY_LIMIT'), os.environ.get('KERNEL_GPUS'), os.environ.get('KERNEL_EXTRA'), os.environ.get('JUPYTERHUB_API_TOKEN'), os.environ.get('KERNEL_USERNAME'))");
  expect(out.stdout.trim()).toBe('0.5 4096Mi 1 ok None alice');
  const r = await execute(ws, '1+1');
  expect(r.results).toEqual(['2']);

  const listed = await request(service.app!).get('/api/kernels').set(as(alice));
  expect(listed.body.map((k: { id: string }) => k.id)).toContain(id);
  expect((await request(service.app!).get('/api/kernels').set(as(bob))).body).toEqual([]);
  expect((await request(service.app!).get(`/api/kernels/${id}`).set(as(bob))).status).toBe(404);
  expect((await request(service.app!).delete(`/api/kernels/${id}`).set(as(bob))).status).toBe(404);

  const del = await request(service.app!).delete(`/api/kernels/${id}`).set(as(alice));
  expect(del.status).toBe(204);
  const again = await request(service.app!).delete(`/api/kernels/${id}`).set(as(alice));
  expect(again.status).toBe(204);
  expect((await request(service.app!).get(`/api/kernels/${id}`).set(as(alice))).status).toBe(404);
  ws.close();
});

test('interrupt stops a running time.sleep(60); restart keeps the id and a new process answers', async () => {
  const { body } = await request(service.app!).post('/api/kernels').set(as(alice)).send({ name: 'conda-env-tf-python3' });
  const ws = await connect(body.id, alice);
  await execute(ws, 'x = 41');
  const sleeping = execute(ws, 'import time; time.sleep(60)', 30000);
  await new Promise((r) => setTimeout(r, 1000));
  const t0 = Date.now();
  expect((await request(service.app!).post(`/api/kernels/${body.id}/interrupt`).set(as(alice))).status).toBe(204);
  const interrupted = await sleeping;
  expect(interrupted.reply.content.status).toBe('error');
  expect(interrupted.reply.content.ename).toBe('KeyboardInterrupt');
  expect(Date.now() - t0).toBeLessThan(5000);

  const statuses: string[] = [];
  ws.on('message', (d) => {
    const m = JSON.parse(d.toString()) as Msg;
    if (m.header.msg_type === 'status') statuses.push(String(m.content.execution_state));
  });
  const restarted = await request(service.app!).post(`/api/kernels/${body.id}/restart`).set(as(alice));
  expect(restarted.status).toBe(200);
  expect(restarted.body.id).toBe(body.id);
  // A REST restart is not a crash: no iopub `restarting`, as Jupyter Server's manual restart.
  expect(statuses).not.toContain('restarting');
  const after = await execute(ws, "print('x' in globals())");
  expect(after.stdout.trim()).toBe('False');
  ws.close();
  await request(service.app!).delete(`/api/kernels/${body.id}`).set(as(alice));
});

test('non-member, inactive experiment and unregistered environment are refused naming environment and experiment', async () => {
  const nonMember = await request(service.app!).post('/api/kernels').set(as(bob)).send({ name: 'conda-env-tf-python3' });
  expect(nonMember.status).toBe(403);
  expect(nonMember.body.message).toBe("user 'bob' is not a member of experiment 'genomics', which environment 'tf' belongs to");
  const inactive = await request(service.app!).post('/api/kernels').set(as(alice)).send({ name: 'conda-env-closed-python3' });
  expect(inactive.status).toBe(403);
  expect(inactive.body.message).toBe("environment 'closed' belongs to experiment 'archive', which is not active");
  const stray = await request(service.app!).post('/api/kernels').set(as(alice)).send({ name: 'conda-env-stray-python3' });
  expect(stray.status).toBe(403);
  expect(stray.body.message).toMatch(/environment 'stray' is not registered to any experiment/);
});

test('a limit changed by SQL applies to the next launch without restart', async () => {
  await sql(`UPDATE experiments SET cpu_request = 1.5, cpu_limit = 3 WHERE name = 'genomics'`);
  const { body } = await request(service.app!).post('/api/kernels').set(as(alice)).send({ name: 'conda-env-tf-python3' });
  const ws = await connect(body.id, alice);
  const out = await execute(ws, "import os; print(os.environ['KERNEL_CPUS'], os.environ['KERNEL_CPUS_LIMIT'])");
  expect(out.stdout.trim()).toBe('1.5 3');
  ws.close();
  await request(service.app!).delete(`/api/kernels/${body.id}`).set(as(alice));
  await sql(`UPDATE experiments SET cpu_request = 0.5, cpu_limit = 2 WHERE name = 'genomics'`);
});

test('a user token naming another user is refused; the hub token is refused; the admin token must name the owner', async () => {
  const other = await request(service.app!).post('/api/kernels').set(as(alice)).send({ name: 'conda-env-tf-python3', env: { KERNEL_USERNAME: 'bob' } });
  expect(other.status).toBe(403);
  const hub = await request(service.app!).post('/api/kernels').set(as(HUB)).send({ name: 'conda-env-tf-python3', env: { KERNEL_USERNAME: 'alice' } });
  expect(hub.status).toBe(403);
  const nobody = await request(service.app!).post('/api/kernels').set(as(ADMIN)).send({ name: 'conda-env-tf-python3' });
  expect(nobody.status).toBe(400);
  expect(nobody.body.message).toMatch(/KERNEL_USERNAME/);
});

test('bad launch input: unknown kernelspec 404, non-string env value 400, oversized value 400, bad timeout 400', async () => {
  expect((await request(service.app!).post('/api/kernels').set(as(alice)).send({ name: 'nope' })).status).toBe(404);
  const nonString = await request(service.app!).post('/api/kernels').set(as(alice)).send({ name: 'conda-env-tf-python3', env: { KERNEL_X: 5 } });
  expect(nonString.status).toBe(400);
  expect(nonString.body.message).toBe('env.KERNEL_X must be a string');
  const big = await request(service.app!).post('/api/kernels').set(as(alice)).send({ name: 'conda-env-tf-python3', env: { KERNEL_X: 'y'.repeat(9000) } });
  expect(big.status).toBe(400);
  const timeout = await request(service.app!).post('/api/kernels').set(as(alice)).send({ name: 'conda-env-tf-python3', env: { KERNEL_LAUNCH_TIMEOUT: 'soon' } });
  expect(timeout.status).toBe(400);
  expect((await service.kernels.list('alice')).length).toBe(0);
});

test('websocket upgrade: no token 401, other user 404', async () => {
  const { body } = await request(service.app!).post('/api/kernels').set(as(alice)).send({ name: 'conda-env-tf-python3' });
  await expect(connect(body.id, 'wrong-token-xxxxxxxxxxxx')).rejects.toThrow('401');
  await expect(connect(body.id, bob)).rejects.toThrow('404');
  await request(service.app!).delete(`/api/kernels/${body.id}`).set(as(alice));
});
