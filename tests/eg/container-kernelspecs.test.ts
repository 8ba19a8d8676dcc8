/**
 * EG kernelspecs on a container backend, seen from the backend's side (a recording backend named
 * `docker` whose workloads never get an address): `image_name` and `executor_image_name` reach the
 * workload, EG's `{kernel_id}`/`{port_range}` are substituted in the argv the container launcher
 * execs (`{connection_file}` is the launcher's to fill), process proxies of another backend are
 * refused before anything is launched, and a response-address launcher is the container's own
 * command with EG's variables (real launches: tests/eg/container-launchers.test.ts).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { loadConfig } from '../../src/config';
import { mintToken } from '../../src/db';
import { createService, type Service } from '../../src/compose';
import { substituteArgv } from '../../src/kernels/lifecycle/argv-placeholders';
import { pendingBackend } from '../support/pending-backend';
import { hostAddress } from '../support/podman';

jest.setTimeout(60_000);

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-eg-container-'));
const homes = path.join(root, 'homes');
const kernels = path.join(homes, 'erin', '.local', 'share', 'jupyter', 'kernels');
const PROXIES = 'enterprise_gateway.services.processproxies.';

function kernelspec(name: string, argv: string[], processProxy: Record<string, unknown>): void {
  fs.mkdirSync(path.join(kernels, name), { recursive: true });
  fs.writeFileSync(path.join(kernels, name, 'kernel.json'), JSON.stringify({ argv, display_name: name, language: 'python', metadata: { process_proxy: processProxy } }));
}

const plainArgv = ['python', '-m', 'ipykernel_launcher', '--id', '{kernel_id}', '--ports', '{port_range}', '-f', '{connection_file}'];
kernelspec('py_docker', plainArgv, { class_name: `${PROXIES}docker_swarm.DockerProcessProxy`, config: { image_name: 'elyra/kernel-py:3.2.3', executor_image_name: 'elyra/kernel-spark-py:3.2.3', port_range: '40000..41999' } });
kernelspec('py_swarm', plainArgv, { class_name: `${PROXIES}docker_swarm.DockerSwarmProcessProxy`, config: { image_name: 'elyra/kernel-py:3.2.3' } });
kernelspec('py_k8s', plainArgv, { class_name: `${PROXIES}k8s.KubernetesProcessProxy`, config: { image_name: 'elyra/kernel-py:3.2.3' } });
kernelspec('py_eg_launcher', ['python', 'launch_ipykernel.py', '--kernel-id', '{kernel_id}', '--port-range', '{port_range}', '--response-address', '{response_address}', '--public-key', '{public_key}'], {
  class_name: `${PROXIES}docker_swarm.DockerProcessProxy`,
  config: { image_name: 'elyra/kernel-py:3.2.3' },
});
fs.writeFileSync(
  path.join(root, 'config.yaml'),
  ['profiles:', '  - slug: small', '    display_name: Small', 'kernels:', '  unregistered_environments: { profile: small }', '  allowed_images: [elyra/kernel-py:3.2.3]'].join('\n'),
);

const { backend: recording, handed } = pendingBackend({ name: 'docker' });

let service: Service;
let token: string;

beforeAll(async () => {
  service = await createService(
    loadConfig({ SPAWNGATE_DATA_DIR: path.join(root, 'data'), SPAWNGATE_HOME_ROOT: homes, SPAWNGATE_CONFIG: path.join(root, 'config.yaml'), SPAWNGATE_PORT: '0' }),
    { backend: recording },
  );
  token = await mintToken(service.db, { username: 'erin', kind: 'cli' });
});

afterAll(async () => {
  await service.close();
  fs.rmSync(root, { recursive: true, force: true });
});

const launch = (name: string) => request(service.app!).post('/api/kernels').set({ Authorization: `token ${token}` }).send({ name, env: { KERNEL_LAUNCH_TIMEOUT: '1' } });

test('DockerProcessProxy: image, executor image and EG placeholders reach the container workload', async () => {
  expect((await launch('py_docker')).status).toBe(500);
  const spec = handed.at(-1)!;
  expect(spec.image).toBe('elyra/kernel-py:3.2.3');
  expect(spec.env.KERNEL_EXECUTOR_IMAGE).toBe('elyra/kernel-spark-py:3.2.3');
  const kernelId = spec.env.KERNEL_ID!;
  expect(JSON.parse(spec.env.SPAWNGATE_KERNEL_ARGV!)).toEqual(['python', '-m', 'ipykernel_launcher', '--id', kernelId, '--ports', '40000..41999', '-f', '{connection_file}']);
});

test('DockerSwarmProcessProxy runs on the docker backend too; the default port range is kernels.port_range', async () => {
  expect((await launch('py_swarm')).status).toBe(500);
  const spec = handed.at(-1)!;
  expect(JSON.parse(spec.env.SPAWNGATE_KERNEL_ARGV!)).toContain('20000..32767');
  expect(spec.env.KERNEL_EXECUTOR_IMAGE).toBeUndefined();
});

test('KubernetesProcessProxy on the docker backend is refused before launch', async () => {
  const before = handed.length;
  const k8s = await launch('py_k8s');
  expect(k8s.status).toBe(400);
  expect(k8s.body.message).toContain(`${PROXIES}k8s.KubernetesProcessProxy`);
  expect(k8s.body.message).toContain('docker backend');
  expect(handed.length).toBe(before);
});

test("a response-address launcher is the container's command, with EG's variables and nothing to publish", async () => {
  expect((await launch('py_eg_launcher')).status).toBe(500); // the recording backend never runs it
  const spec = handed.at(-1)!;
  const id = spec.env.KERNEL_ID!;
  const address = spec.env.RESPONSE_ADDRESS!;
  // No backend address and no kernels.response_address here: this host's first non-loopback IPv4.
  expect(address).toMatch(new RegExp(`^${hostAddress().replaceAll('.', '\\.')}:\\d+$`));
  expect(spec.command).toEqual(['python', 'launch_ipykernel.py', '--kernel-id', id, '--port-range', '20000..32767', '--response-address', address, '--public-key', spec.env.PUBLIC_KEY]);
  expect(Buffer.from(spec.env.PUBLIC_KEY!, 'base64').length).toBeGreaterThan(200);
  expect(spec.env).toMatchObject({ PORT_RANGE: '20000..32767', KERNEL_LANGUAGE: 'python', KERNEL_USERNAME: 'erin' });
  expect(spec.env.SPAWNGATE_CONNECTION_INFO).toBeUndefined();
  expect(spec.env.SPAWNGATE_KERNEL_ARGV).toBeUndefined();
  expect(spec.ports).toBeUndefined();
  expect(spec.image).toBe('elyra/kernel-py:3.2.3');
});

test('placeholders: every occurrence replaced, unknown names left as written', () => {
  expect(substituteArgv(['{kernel_id}-{kernel_id}', '{unknown}', '{kernel_username}', 'x{port_range}y'], { kernel_id: 'k', port_range: '1..2' })).toEqual(['k-k', '{unknown}', '{kernel_username}', 'x1..2y']);
});

test('kernels.response_address is a host without a port; anything else stops start-up naming the setting', () => {
  const file = path.join(root, 'bad-response.yaml');
  for (const bad of ['10.0.0.5:8877', 'http://spawngate', 'a b']) {
    fs.writeFileSync(file, `kernels:\n  response_address: ${JSON.stringify(bad)}\n`);
    expect(() => loadConfig({ SPAWNGATE_DATA_DIR: path.join(root, 'data'), SPAWNGATE_HOME_ROOT: homes, SPAWNGATE_CONFIG: file })).toThrow(/kernels\.response_address.*without a port/s);
  }
  fs.writeFileSync(file, 'kernels:\n  response_address: spawngate-workers.jupyter.svc\n');
  expect(loadConfig({ SPAWNGATE_DATA_DIR: path.join(root, 'data'), SPAWNGATE_HOME_ROOT: homes, SPAWNGATE_CONFIG: file }).file.kernels.response_address).toBe('spawngate-workers.jupyter.svc');
});
