/**
 * Requests when only limits are set (against node allocatable), CPU never below 1m, and the pod's
 * identity: the home's owner, a missing or root-owned home refused before sending, never an invented uid.
 */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { buildPod, createKubernetesBackend, podManifestOptions } from '../../../src/backends/kubernetes';
import { PermanentBackendError } from '../../../src/backends/types';
import { loadConfig } from '../../../src/config';
import { testLogger as silent } from '../../support/logger';
import { pollUntil as waitFor } from '../../support/wait';
import { asRoot, basePod, c, loadWithProfile as loadProfile, post, role, scratch, spec, startFake, type Obj } from './rules-helpers';

jest.setTimeout(60_000);

const dir = scratch();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const loadWithProfile = (profile: Obj) => loadProfile(dir, profile);

describe('requests when only limits are set, against node allocatable', () => {
  const gpuNode = { cpu: '7910m', memory: '29Gi' };

  test('limits only (8 CPU / 32 GiB): the stand-in defaults requests to them and the pod never schedules', async () => {
    const fake = await startFake({ nodeAllocatable: gpuNode });
    try {
      const pod = basePod();
      c(pod).resources = { limits: { cpu: '8', memory: '32Gi' } };
      expect((await post(fake, 'pods', pod)).status).toBe(201);
      const stored = await waitFor(async () => fake.pods.get(pod.metadata.name), (p) => p?.status?.conditions?.[0]?.reason === 'Unschedulable');
      expect(c(stored!).resources.requests).toEqual({ cpu: '8', memory: '32Gi' });
      expect(stored!.status.conditions[0].message).toMatch(/^0\/3 nodes are available: 3 Insufficient cpu, 3 Insufficient memory\./);
      expect(stored!.status.phase).toBe('Pending');
    } finally {
      await fake.close();
    }
  });

  test('spawngate requests default_request_fraction of the limit, and the same pod schedules', async () => {
    const fake = await startFake({ nodeAllocatable: gpuNode });
    const backend = createKubernetesBackend({ namespace: role.namespace, kubeconfig: { from: 'file', path: fake.writeKubeconfig(fs.mkdtempSync(path.join(dir, 'kc-'))) }, logger: silent, defaultRunAsUser: 1000, defaultRequestFraction: 0.5 });
    try {
      const s = spec({ resources: { cpuLimit: 8, memoryLimitMiB: 32768 } });
      await backend.ensure(s);
      const pod = fake.received.find((o) => o.metadata.name === s.name)!;
      expect(c(pod).resources).toEqual({ requests: { cpu: '4000m', memory: '16384Mi' }, limits: { cpu: '8000m', memory: '32768Mi' } });
      await waitFor(async () => fake.pods.get(s.name), (p) => p?.spec?.nodeName === 'fake-node');
      // An explicit request is kept as given.
      const own = buildPod(spec({ resources: { cpuRequest: 7, cpuLimit: 8, memoryLimitMiB: 1000 } }), { namespace: 'ns', defaultRunAsUser: 1000, defaultRequestFraction: 0.5 }).pod;
      expect(own.spec!.containers[0]!.resources).toEqual({ requests: { cpu: '7000m', memory: '500Mi' }, limits: { cpu: '8000m', memory: '1000Mi' } });
    } finally {
      await backend.close({ stopAll: true });
      await fake.close();
    }
  });

  test('a CPU amount below 1m is refused, never rendered as 0m (no limit); the config refuses it too', () => {
    expect(() => buildPod(spec({ resources: { cpuLimit: 0.0001 } }), { namespace: 'ns', defaultRunAsUser: 1000 })).toThrow(/cpu limit 0\.0001 cores is below 1m/);
    expect(() => buildPod(spec({ resources: { cpuRequest: 0.0001, cpuLimit: 1 } }), { namespace: 'ns', defaultRunAsUser: 1000 })).toThrow(/below 1m/);
    expect(buildPod(spec({ resources: { cpuLimit: 0.001 } }), { namespace: 'ns', defaultRunAsUser: 1000 }).pod.spec!.containers[0]!.resources!.limits).toEqual({ cpu: '1m' });
    // Rounding keeps request <= limit: both are rounded the same way, never below 1m.
    expect(buildPod(spec({ resources: { cpuRequest: 0.0014, cpuLimit: 0.0016 } }), { namespace: 'ns', defaultRunAsUser: 1000 }).pod.spec!.containers[0]!.resources).toEqual({ requests: { cpu: '1m' }, limits: { cpu: '2m' } });
    expect(loadWithProfile({ resources: { cpu_limit: 0.0001 } })).toThrow(/resources\.cpu_limit: at least 0\.001 cores/);
  });
});

describe('homes: the pod runs as the home owner, a missing or root-owned home is refused before sending', () => {
  test('the stand-in kubelet creates a missing subPath directory as root (what spawngate must prevent)', async () => {
    const claim = fs.mkdtempSync(path.join(dir, 'claim-'));
    fs.chmodSync(claim, 0o755);
    const fake = await startFake({ runCommands: true, persistentVolumes: { efs: claim } });
    try {
      const pod = basePod();
      pod.spec.volumes = [{ name: 'home', persistentVolumeClaim: { claimName: 'efs' } }];
      c(pod).volumeMounts = [{ name: 'home', mountPath: path.join(claim, 'ghost'), subPath: 'ghost' }];
      expect((await post(fake, 'pods', pod)).status).toBe(201);
      await waitFor(async () => fs.existsSync(path.join(claim, 'ghost')), Boolean);
      expect(fs.statSync(path.join(claim, 'ghost')).uid).toBe(process.getuid!());
    } finally {
      await fake.close();
    }
  });

  test('spawngate stats the home: owner used, missing and root-owned refused with a message, nothing sent', async () => {
    const homes = fs.mkdtempSync(path.join(dir, 'homes-'));
    fs.mkdirSync(path.join(homes, 'h18r-carol'));
    if (asRoot) fs.chownSync(path.join(homes, 'h18r-carol'), 4321, 4322);
    const settings = { namespace: 'ns', homeRoot: homes, home: { claimName: 'efs', root: homes } };
    const carol = buildPod(spec({ env: { KERNEL_USERNAME: 'h18r-carol' } }), await podManifestOptions(spec({ env: { KERNEL_USERNAME: 'h18r-carol' } }), settings)).pod;
    expect(carol.spec!.securityContext).toMatchObject(asRoot ? { runAsUser: 4321, runAsGroup: 4322, fsGroup: 4322 } : { runAsUser: process.getuid!() });
    await expect(podManifestOptions(spec({ env: { KERNEL_USERNAME: 'h18r-nobody' } }), settings)).rejects.toThrow(/home directory .*h18r-nobody of user h18r-nobody does not exist/);
    // A profile's runAsUser is the admin's choice and needs no home owner.
    await expect(podManifestOptions(spec({ env: { KERNEL_USERNAME: 'h18r-nobody' }, overrides: { runAsUser: 5000 } }), { namespace: 'ns', homeRoot: homes })).resolves.toBeDefined();
    if (asRoot) {
      fs.mkdirSync(path.join(homes, 'h18r-rooty'));
      const err = await podManifestOptions(spec({ env: { KERNEL_USERNAME: 'h18r-rooty' } }), settings).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PermanentBackendError);
      expect((err as Error).message).toMatch(/refusing to start a pod for h18r-rooty: their home .* belongs to uid 0, gid 0 \(root\); give the home to the user/);
    }

    const fake = await startFake();
    const backend = createKubernetesBackend({ namespace: role.namespace, kubeconfig: { from: 'file', path: fake.writeKubeconfig(homes) }, logger: silent, homeRoot: homes });
    try {
      await expect(backend.ensure(spec({ env: { KERNEL_USERNAME: 'h18r-nobody' } }))).rejects.toThrow(/does not exist/);
      expect(fake.received).toEqual([]);
    } finally {
      await backend.close();
      await fake.close();
    }
  });

  test('from the configuration: homes decide unless kubernetes.run_as_user names a shared uid', async () => {
    const { kubernetesOptionsFromConfig } = await import('../../../src/backends/kubernetes');
    const file = path.join(dir, 'k.yaml');
    fs.writeFileSync(file, YAML.stringify({ kubernetes: { namespace: 'ns' } }));
    const byHome = kubernetesOptionsFromConfig(loadConfig({ SPAWNGATE_CONFIG: file, SPAWNGATE_HOME_ROOT: '/srv/homes', SPAWNGATE_DATA_DIR: path.join(dir, 'd') }));
    expect(byHome).toMatchObject({ homeRoot: '/srv/homes', defaultRequestFraction: 0.5 });
    expect(byHome.defaultRunAsUser).toBeUndefined();
    fs.writeFileSync(file, YAML.stringify({ kubernetes: { namespace: 'ns', run_as_user: 1500 } }));
    const shared = kubernetesOptionsFromConfig(loadConfig({ SPAWNGATE_CONFIG: file, SPAWNGATE_HOME_ROOT: '/srv/homes', SPAWNGATE_DATA_DIR: path.join(dir, 'd') }));
    expect(shared).toMatchObject({ defaultRunAsUser: 1500 });
    expect(shared.homeRoot).toBeUndefined();
  });
});

test('no uid from the profile, the home or kubernetes.run_as_user: refused, never an invented one', async () => {
  await expect(podManifestOptions(spec(), { namespace: 'ns' })).rejects.toThrow(/no uid for pod .*: pods run as the owner of the user's home/);
  await expect(podManifestOptions(spec({ overrides: { runAsUser: 4000 } }), { namespace: 'ns' })).resolves.toBeDefined();
  await expect(podManifestOptions(spec(), { namespace: 'ns', defaultRunAsUser: 1500 })).resolves.toMatchObject({ defaultRunAsUser: 1500 });
});

