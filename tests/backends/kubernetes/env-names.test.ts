/**
 * Environment variable names by cluster version: the stand-in refuses what each version refuses, the
 * backend reads the version from /version, and spawngate refuses such names before sending — at config
 * load, as a 400 from POST /api/kernels (a kernel.json's env) and from the hub's start request (a
 * profile's env).
 */
import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import YAML from 'yaml';
import { createKubernetesBackend, type KubernetesBackend } from '../../../src/backends/kubernetes';
import { createService } from '../../../src/compose';
import { loadConfig } from '../../../src/config';
import { mintToken } from '../../../src/db';
import { testLogger as silent } from '../../support/logger';
import { basePod, c, loadWithProfile as loadProfile, post, role, scratch, spec, startFake, type Obj } from './rules-helpers';

jest.setTimeout(60_000);

const dir = scratch();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const loadWithProfile = (profile: Obj) => loadProfile(dir, profile);

describe('environment variable names by cluster version', () => {
  test('the stand-in refuses a non-C name before 1.32 and accepts it from 1.32, which still refuses "="', async () => {
    const old = await startFake({ kubernetesMinor: 31 });
    const relaxed = await startFake({ kubernetesMinor: 32 });
    try {
      const pod = basePod();
      c(pod).env.push({ name: 'MY VAR', value: '1' });
      const refused = await post(old, 'pods', pod);
      expect(refused.status).toBe(422);
      expect(refused.body.message).toMatch(/env\[\d+\]\.name: Invalid value: "MY VAR"/);
      expect((await post(relaxed, 'pods', pod)).status).toBe(201);
      const eq = basePod();
      c(eq).env.push({ name: 'A=B', value: '1' });
      expect((await post(relaxed, 'pods', eq)).status).toBe(422);
      old.invalid.length = 0;
      relaxed.invalid.length = 0;
    } finally {
      await old.close();
      await relaxed.close();
    }
  });

  test('an unreachable API: the rule every version accepts (the launch itself reports the outage)', async () => {
    const backend = createKubernetesBackend({ namespace: 'ns', kubeconfig: { from: 'file', path: '/nonexistent/kubeconfig' }, logger: silent });
    await expect(backend.envNameRule()).resolves.toBe('c-identifier');
    await backend.close();
  });

  test('the backend reads the rule from /version and refuses what the cluster would, before sending', async () => {
    for (const [minor, rule] of [[31, 'c-identifier'], [32, 'relaxed'], [35, 'relaxed']] as const) {
      const fake = await startFake({ kubernetesMinor: minor });
      const backend = createKubernetesBackend({ namespace: role.namespace, kubeconfig: { from: 'file', path: fake.writeKubeconfig(fs.mkdtempSync(path.join(dir, 'kc-'))) }, logger: silent, defaultRunAsUser: 1000 });
      try {
        expect(await backend.envNameRule()).toBe(rule);
        const s = spec({ env: { 'MY VAR': '1' } });
        if (rule === 'c-identifier') {
          await expect(backend.ensure(s)).rejects.toThrow(/env\."MY VAR": an environment variable name must consist of letters/);
          expect(fake.received).toEqual([]);
        } else {
          await expect(backend.ensure(s)).resolves.toMatchObject({ name: s.name });
        }
        expect(fake.invalid).toEqual([]);
      } finally {
        await backend.close({ stopAll: true });
        await fake.close();
      }
    }
  });

  test('a profile env name no Kubernetes accepts stops the configuration from loading', () => {
    expect(loadWithProfile({ env: { 'A=B': '1' } })).toThrow(/profiles\.0: env\."A=B": an environment variable name must consist of printable ASCII characters other than "="/);
    expect(loadWithProfile({ env: { 'MY.VAR': '1', 'my-var': '2' } })).not.toThrow();
  });

  test("a kernel.json env name the cluster refuses is a 400 from POST /api/kernels naming the kernelspec and variable; nothing is sent", async () => {
    const fake = await startFake({ kubernetesMinor: 31 });
    const root = fs.mkdtempSync(path.join(dir, 'svc-'));
    const homes = path.join(root, 'homes');
    const kdir = path.join(homes, 'alice', '.local', 'share', 'jupyter', 'kernels', 'odd');
    fs.mkdirSync(kdir, { recursive: true });
    fs.writeFileSync(path.join(kdir, 'kernel.json'), JSON.stringify({ argv: ['python3', '-m', 'ipykernel_launcher', '-f', '{connection_file}'], display_name: 'Odd', language: 'python', env: { 'MY VAR': '1' } }));
    fs.writeFileSync(path.join(root, 'config.yaml'), YAML.stringify({ profiles: [{ slug: 'small', display_name: 'Small' }], kernels: { unregistered_environments: { profile: 'small' }, image: 'registry.example/kernel:1' } }));
    const backend: KubernetesBackend = createKubernetesBackend({ namespace: role.namespace, kubeconfig: { from: 'file', path: fake.writeKubeconfig(root) }, logger: silent, defaultRunAsUser: 1000 });
    const service = await createService(
      loadConfig({ SPAWNGATE_DATA_DIR: path.join(root, 'data'), SPAWNGATE_HOME_ROOT: homes, SPAWNGATE_CONFIG: path.join(root, 'config.yaml'), SPAWNGATE_PORT: '0' }),
      { backend },
    );
    try {
      const token = await mintToken(service.db, { username: 'alice', kind: 'cli' });
      const res = await request(service.app!).post('/api/kernels').set({ Authorization: `token ${token}` }).send({ name: 'odd' });
      expect(res.status).toBe(400);
      expect(res.body.message).toMatch(/kernelspec 'odd' env\."MY VAR": an environment variable name must consist of letters, digits/);
      expect(fake.received).toEqual([]);
      expect(await service.kernels.list('alice')).toEqual([]);
    } finally {
      await service.close();
      await fake.close();
    }
  });
});

test("a profile env name the cluster refuses (valid only from 1.32) is a 400 from the hub's start request; nothing is claimed or sent", async () => {
  const fake = await startFake({ kubernetesMinor: 31 });
  const root = fs.mkdtempSync(path.join(dir, 'svc-'));
  fs.writeFileSync(path.join(root, 'config.yaml'), YAML.stringify({ profiles: [{ slug: 'odd', display_name: 'Odd', image: 'registry.example/nb:1', env: { 'MY VAR': '1' } }] }));
  const backend = createKubernetesBackend({ namespace: role.namespace, kubeconfig: { from: 'file', path: fake.writeKubeconfig(root) }, logger: silent, defaultRunAsUser: 1000 });
  const hub = 'hub-token-h18-rules-0123456789';
  const service = await createService(
    loadConfig({ SPAWNGATE_DATA_DIR: path.join(root, 'data'), SPAWNGATE_HOME_ROOT: root, SPAWNGATE_CONFIG: path.join(root, 'config.yaml'), SPAWNGATE_HUB_TOKEN: hub, SPAWNGATE_PORT: '0' }),
    { backend },
  );
  try {
    const res = await request(service.app!).post('/api/users/alice/server').set({ Authorization: `token ${hub}` }).send({ env: { JUPYTERHUB_USER: 'alice' } });
    expect(res.status).toBe(400);
    expect(res.body.message).toMatch(/profile 'odd' env\."MY VAR": an environment variable name must consist of letters, digits/);
    expect(fake.received).toEqual([]);
    expect((await request(service.app!).get('/api/users/alice/server').set({ Authorization: `token ${hub}` })).status).toBe(404);
  } finally {
    await service.close();
    await fake.close();
  }
});

