/**
 * A start that cannot finish fails within its start timeout with the backend's reason, never hangs:
 * the real local backend, with `ensure` stuck after reporting progress (as an engine stuck pulling an
 * image or a cluster that never schedules), behind the real service and hub API.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { createLocalBackend, type Backend } from '../../src/backends';
import { loadConfig } from '../../src/config';
import { createService, type Service } from '../../src/compose';
import { eventually } from '../support/wait';

jest.setTimeout(60_000);

const HUB = 'hub-token-for-tests-0123456789';
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-deadline-'));
const auth = { Authorization: `token ${HUB}` };
let service: Service;
let release: () => void = () => undefined;
let local: ReturnType<typeof createLocalBackend>;
let createdLate = false;

beforeAll(async () => {
  local = createLocalBackend({ stateDir: path.join(dir, 'local') });
  const stuck: Backend = Object.assign(Object.create(local) as Backend, {
    async ensure(...args: Parameters<Backend['ensure']>) {
      const [spec, onEvent] = args;
      onEvent?.({ name: spec.name, type: 'progress', message: 'waiting for the image registry' });
      await new Promise<void>((r) => (release = r));
      const state = await local.ensure(spec, onEvent);
      createdLate = true;
      return state;
    },
  });
  const config = loadConfig({
    SPAWNGATE_DATA_DIR: path.join(dir, 'data'),
    SPAWNGATE_HUB_TOKEN: HUB,
    SPAWNGATE_PORT: '0',
    SPAWNGATE_SERVER_COMMAND: '/usr/bin/python3 -m http.server {port} --bind 127.0.0.1',
  });
  service = await createService(config, { backend: stuck });
});

afterAll(async () => {
  release();
  await service.lifecycle.stopAllNow(1);
  await service.close();
});

test('a backend that never creates the server: failed at the start timeout, naming the backend and its last progress', async () => {
  const t0 = Date.now();
  const start = await request(service.app!).post('/api/users/stuck/server').set(auth).send({ start_timeout: 2 });
  expect(start.status).toBe(202);
  const res = await request(service.app!).get('/api/users/stuck/server?wait=ready&timeout=20').set(auth);
  const elapsed = Date.now() - t0;
  expect(res.body.state).toBe('failed');
  expect(res.body.message).toBe('the local backend did not create the server within 2 s (last: waiting for the image registry)');
  expect(elapsed).toBeGreaterThanOrEqual(1900);
  expect(elapsed).toBeLessThan(10_000);
});

test('a server the backend creates after the start failed is removed, not left running', async () => {
  const res = await request(service.app!).get('/api/users/stuck/server').set(auth);
  expect(res.body.state).toBe('failed');
  const running = async (): Promise<string[]> => (await local.list()).filter((w) => w.phase === 'running').map((w) => w.name);
  expect(await running()).toEqual([]);
  release(); // the late ensure now starts the process; the failed start must stop it again
  expect(await eventually(() => createdLate)).toBe(true); // it was created…
  expect(await eventually(async () => (await running()).length === 0)).toBe(true); // …and removed
  expect(await running()).toEqual([]);
});
