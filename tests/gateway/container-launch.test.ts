/**
 * The kernel service's container path, seen from the backend's side: what a container backend is
 * handed (the launcher, the kernelspec argv, the connection info to lift out of the environment), and a
 * launch that never gets an address fails naming the backend's last progress event.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { loadConfig } from '../../src/config';
import { mintToken } from '../../src/db';
import { createService, type Service } from '../../src/compose';
import { pendingBackend } from '../support/pending-backend';

jest.setTimeout(60_000);

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-container-launch-'));
const homes = path.join(root, 'homes');
const kernelDir = path.join(homes, 'alice', '.conda', 'envs', 'tf', 'share', 'jupyter', 'kernels', 'python3');
fs.mkdirSync(kernelDir, { recursive: true });
const argv = [path.join(homes, 'alice', '.conda', 'envs', 'tf', 'bin', 'python'), '-m', 'ipykernel_launcher', '-f', '{connection_file}'];
fs.writeFileSync(path.join(kernelDir, 'kernel.json'), JSON.stringify({ argv, display_name: 'tf', language: 'python' }));
fs.writeFileSync(
  path.join(root, 'config.yaml'),
  ['profiles:', '  - slug: small', '    display_name: Small', 'kernels:', '  unregistered_environments: { profile: small }', '  image: registry.example/kernel:slow'].join('\n'),
);

/** A backend whose workloads never get an address: the image is "still pulling". */
const { backend: stuck, handed, stopped } = pendingBackend({ name: 'stuck', progress: 'Pulling: pulling image "registry.example/kernel:slow"' });

let service: Service;
let token: string;

beforeAll(async () => {
  service = await createService(
    loadConfig({ SPAWNGATE_DATA_DIR: path.join(root, 'data'), SPAWNGATE_HOME_ROOT: homes, SPAWNGATE_CONFIG: path.join(root, 'config.yaml'), SPAWNGATE_PORT: '0' }),
    { backend: stuck },
  );
  token = await mintToken(service.db, { username: 'alice', kind: 'cli' });
});

afterAll(async () => {
  await service.close();
  fs.rmSync(root, { recursive: true, force: true });
});

test('a launch without an address fails naming the last progress event; the workload is removed', async () => {
  const res = await request(service.app!)
    .post('/api/kernels')
    .set({ Authorization: `token ${token}` })
    .send({ name: 'conda-env-tf-python3', env: { KERNEL_LAUNCH_TIMEOUT: '2' } });
  expect(res.status).toBe(500);
  expect(res.body.message).toBe('Kernel launch failed: kernel got no address within 2 s; last event: Pulling: pulling image "registry.example/kernel:slow"');
  expect(stopped).toContain(handed[0]!.name);
  expect(await service.kernels.list('alice')).toEqual([]);
});

test('a container backend gets the launcher, the kernelspec argv and the connection info to lift out', () => {
  const spec = handed[0]!;
  expect(spec.image).toBe('registry.example/kernel:slow');
  expect(spec.command).toEqual(['python3', '-m', 'spawngate.launcher']);
  expect(JSON.parse(spec.env.SPAWNGATE_KERNEL_ARGV!)).toEqual(argv);
  const info = JSON.parse(spec.env.SPAWNGATE_CONNECTION_INFO!);
  expect(info).toMatchObject({ ip: '0.0.0.0', transport: 'tcp', signature_scheme: 'hmac-sha256', kernel_name: 'conda-env-tf-python3' });
  expect(info.key).toMatch(/^[0-9a-f]{64}$/);
  expect(spec.env.HOME).toBe(path.join(homes, 'alice'));
  expect(spec.env.KERNEL_USERNAME).toBe('alice');
});
