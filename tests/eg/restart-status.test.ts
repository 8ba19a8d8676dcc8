/**
 * A manual restart as JupyterLab's own client library (`@jupyterlab/services`) sees it, against real
 * ipykernel through spawngate's gateway: the library's own `restarting`, one reconnect, never
 * `autorestarting` (which iopub `restarting` from the server would cause: the library would take the
 * REST restart for a crash and reconnect a second time). For spawngate's own launcher and for an
 * EG-style launcher, whose restart reports new ports.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KernelAPI, KernelConnection, ServerConnection } from '@jupyterlab/services';
import WebSocket from 'ws';
import { loadConfig } from '../../src/config';
import { mintToken } from '../../src/db';
import { createService, type Service } from '../../src/compose';

jest.setTimeout(120_000);

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-eg-restart-'));
const homes = path.join(root, 'homes');
const kernels = path.join(homes, 'dana', '.local', 'share', 'jupyter', 'kernels');
const env = { KERNEL_ENV_EXP: 'rs-env' };
fs.mkdirSync(path.join(kernels, 'own'), { recursive: true });
fs.writeFileSync(path.join(kernels, 'own', 'kernel.json'), JSON.stringify({ argv: ['/usr/bin/python3', '-m', 'ipykernel_launcher', '-f', '{connection_file}'], display_name: 'own', language: 'python', env }));
fs.mkdirSync(path.join(kernels, 'eg'), { recursive: true });
fs.copyFileSync(path.join(__dirname, 'eg_launcher.py'), path.join(kernels, 'eg', 'eg_launcher.py'));
fs.writeFileSync(
  path.join(kernels, 'eg', 'kernel.json'),
  JSON.stringify({
    argv: ['/usr/bin/python3', '{resource_dir}/eg_launcher.py', '--kernel-id', '{kernel_id}', '--port-range', '{port_range}', '--response-address', '{response_address}', '--public-key', '{public_key}', '--resource-dir', '{resource_dir}', '{connection_file}'],
    display_name: 'eg',
    language: 'python',
    env,
  }),
);

let service: Service;
let settings: ServerConnection.ISettings;

beforeAll(async () => {
  service = await createService(
    loadConfig({
      SPAWNGATE_DATA_DIR: path.join(root, 'data'),
      SPAWNGATE_HUB_TOKEN: 'hub-token-for-restart-tests-0123456789',
      SPAWNGATE_ADMIN_TOKEN: 'admin-token-for-restart-tests-0123456789',
      SPAWNGATE_HOME_ROOT: homes,
      SPAWNGATE_PORT: '0',
      // The homes here are made by root: the protocol, not workload identity (tests/tenancy), is under test.
      SPAWNGATE_LOCAL_ALLOW_ROOT: '1',
      // EG launchers listen on TCP ports; refused by default on a multi-user local backend (tests/tenancy/tcp-kernels).
      SPAWNGATE_LOCAL_TCP_KERNELS_OPEN_TO_ALL_USERS: '1',
    }),
  );
  const port = await service.listen();
  await service.db.query(`
    INSERT INTO users (username) VALUES ('dana');
    INSERT INTO experiments (name, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib) VALUES ('rs-exp', 0.5, 1, 256, 1024);
    INSERT INTO environments (name, experiment_id) SELECT 'rs-env', id FROM experiments WHERE name = 'rs-exp';
    INSERT INTO experiment_members (experiment_id, user_id) SELECT e.id, u.id FROM experiments e, users u WHERE e.name = 'rs-exp';
  `);
  const token = await mintToken(service.db, { username: 'dana', kind: 'cli' });
  settings = ServerConnection.makeSettings({ baseUrl: `http://127.0.0.1:${port}`, wsUrl: `ws://127.0.0.1:${port}`, token, appendToken: true, WebSocket: WebSocket as never, fetch });
});

afterAll(async () => {
  for (const k of await service.kernels.list(undefined)) await service.kernels.shutdown(undefined, k.id);
  await service.close();
  fs.rmSync(root, { recursive: true, force: true });
});

test.each(['own', 'eg'])('a manual restart (%s launcher) is not an automatic one to JupyterLab', async (name) => {
  const model = await KernelAPI.startNew({ name: `${name}` }, settings);
  const kernel = new KernelConnection({ model, serverSettings: settings });
  try {
    await kernel.info;
    const statuses: string[] = [];
    const connections: string[] = [];
    kernel.statusChanged.connect((_, s) => void statuses.push(s));
    kernel.connectionStatusChanged.connect((_, s) => void connections.push(s));
    await kernel.requestExecute({ code: 'x = 1' }).done;
    await kernel.restart();
    const reply = await kernel.requestExecute({ code: "print('x' in globals())" }).done;
    expect(reply.content.status).toBe('ok');
    // Settle: a late iopub `restarting` would turn into `autorestarting` and another reconnect here.
    await new Promise((r) => setTimeout(r, 1500));
    expect(statuses).toContain('restarting');
    expect(statuses).not.toContain('autorestarting');
    expect(connections.filter((c) => c === 'connecting')).toHaveLength(1);
    expect(kernel.connectionStatus).toBe('connected');
  } finally {
    await kernel.shutdown().catch(() => undefined);
    kernel.dispose();
  }
});
