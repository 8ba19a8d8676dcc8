/**
 * What a real API server refuses, twice: the stand-in (apiserver-rules.ts) refuses each input the way
 * the real server would (422 with the field, or 403 from Pod Security), and spawngate refuses the same
 * input before sending anything — when the configuration loads (profiles' kubernetes blocks and env)
 * or when the launch is built (the backend, a kernel.json's env as a 400 from the gateway).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import YAML from 'yaml';
import {
  buildConnectionSecret,
  buildPod,
  createKubernetesBackend,
  podManifestOptions,
  type KubernetesBackend,
} from '../../../src/backends/kubernetes';
import { PermanentBackendError, type WorkloadSpec } from '../../../src/backends/types';
import { createService } from '../../../src/compose';
import { ConfigError, loadConfig } from '../../../src/config';
import { mintToken } from '../../../src/db';
import { SLEEP_FOREVER } from '../contract';
import { testLogger as silent } from '../../support/logger';
import { pollUntil as waitFor } from '../../support/wait';
import { FakeApiServer, readDocumentedRole, type FakeApiServerOptions } from './fake-apiserver';

jest.setTimeout(60_000);

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const role = readDocumentedRole();
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-h18-rules-'));
const asRoot = process.getuid?.() === 0;
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function spec(over: Partial<WorkloadSpec> = {}): WorkloadSpec {
  return { name: `sg-krn-r${Math.random().toString(36).slice(2, 10)}`, kind: 'kernel', labels: {}, command: ['/usr/bin/python3', '-c', SLEEP_FOREVER], env: {}, image: 'registry.example/kernel:1', ...over };
}

/** A pod as spawngate builds it with no overrides: valid, the base the cases break. */
function basePod(): Obj {
  return JSON.parse(JSON.stringify(buildPod(spec(), { namespace: role.namespace, defaultRunAsUser: 1000 }).pod)) as Obj;
}

async function startFake(opts: Partial<FakeApiServerOptions> = {}): Promise<FakeApiServer> {
  return new FakeApiServer({ namespace: role.namespace, rules: role.rules, ...opts }).start();
}

/** POSTs an object straight to the stand-in, as a client without spawngate's checks would. */
async function post(fake: FakeApiServer, resource: 'pods' | 'secrets', body: Obj): Promise<{ status: number; body: Obj }> {
  const res = await fetch(`${fake.url}/api/v1/namespaces/${role.namespace}/${resource}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${fake.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Obj };
}

function loadWithProfile(profile: Obj): () => unknown {
  const file = path.join(dir, `config-${Math.random().toString(36).slice(2)}.yaml`);
  fs.writeFileSync(file, YAML.stringify({ profiles: [{ slug: 'p', display_name: 'P', image: 'registry.example/nb:1', ...profile }] }));
  return () => loadConfig({ SPAWNGATE_CONFIG: file, SPAWNGATE_DATA_DIR: path.join(dir, 'data') });
}

interface Case {
  rule: string;
  /** The profile's kubernetes block that breaks it. */
  overrides: Obj;
  /** The same, applied to a pod as a naive client would send it. */
  apply: (pod: Obj) => void;
  /** The field the real server names. */
  field: RegExp;
  /** What spawngate's config load error says. */
  config: RegExp;
}

const c = (pod: Obj) => pod.spec.containers[0] as Obj;
const CASES: Case[] = [
  { rule: 'annotation key', overrides: { annotations: { 'bad key': 'x' } }, apply: (p) => (p.metadata.annotations['bad key'] = 'x'), field: /metadata\.annotations/, config: /annotations key "bad key"/ },
  {
    rule: 'annotations total size (256 KiB)',
    overrides: { annotations: { 'example.com/big': 'x'.repeat(256 * 1024) } },
    apply: (p) => (p.metadata.annotations['example.com/big'] = 'x'.repeat(256 * 1024)),
    field: /metadata\.annotations.*262144/,
    config: /annotations: total size \d+ bytes exceeds 262144/,
  },
  { rule: 'label key', overrides: { labels: { 'a/b/c': 'x' } }, apply: (p) => (p.metadata.labels['a/b/c'] = 'x'), field: /metadata\.labels/, config: /labels key "a\/b\/c"/ },
  { rule: 'nodeSelector key', overrides: { nodeSelector: { 'pool type': 'gpu' } }, apply: (p) => (p.spec.nodeSelector = { 'pool type': 'gpu' }), field: /spec\.nodeSelector/, config: /nodeSelector key "pool type"/ },
  { rule: 'nodeSelector value', overrides: { nodeSelector: { pool: 'g p u' } }, apply: (p) => (p.spec.nodeSelector = { pool: 'g p u' }), field: /spec\.nodeSelector\.pool/, config: /nodeSelector\.pool value "g p u"/ },
  {
    rule: 'toleration: Exists with a value',
    overrides: { tolerations: [{ key: 'gpu', operator: 'Exists', value: 'yes' }] },
    apply: (p) => (p.spec.tolerations = [{ key: 'gpu', operator: 'Exists', value: 'yes' }]),
    field: /spec\.tolerations\[0\]\.operator/,
    config: /tolerations\[0\]\.value: must be empty when operator is Exists/,
  },
  {
    rule: 'toleration: empty key needs Exists',
    overrides: { tolerations: [{ operator: 'Equal', value: 'x' }] },
    apply: (p) => (p.spec.tolerations = [{ operator: 'Equal', value: 'x' }]),
    field: /spec\.tolerations\[0\]\.operator/,
    config: /tolerations\[0\]\.operator: must be Exists when key is empty/,
  },
  {
    rule: 'toleration: unknown effect',
    overrides: { tolerations: [{ key: 'gpu', effect: 'Sometimes' }] },
    apply: (p) => (p.spec.tolerations = [{ key: 'gpu', effect: 'Sometimes' }]),
    field: /spec\.tolerations\[0\]\.effect/,
    config: /tolerations\[0\]\.effect: must be one of/,
  },
  {
    rule: 'toleration: tolerationSeconds without NoExecute',
    overrides: { tolerations: [{ key: 'gpu', operator: 'Exists', effect: 'NoSchedule', tolerationSeconds: 30 }] },
    apply: (p) => (p.spec.tolerations = [{ key: 'gpu', operator: 'Exists', effect: 'NoSchedule', tolerationSeconds: 30 }]),
    field: /spec\.tolerations\[0\]\.effect/,
    config: /tolerationSeconds: only with effect NoExecute/,
  },
  { rule: 'serviceAccountName', overrides: { serviceAccountName: 'Kernel_SA' }, apply: (p) => (p.spec.serviceAccountName = 'Kernel_SA'), field: /spec\.serviceAccountName/, config: /serviceAccountName must be a DNS-1123 subdomain/ },
  { rule: 'priorityClassName', overrides: { priorityClassName: 'High Priority' }, apply: (p) => (p.spec.priorityClassName = 'High Priority'), field: /spec\.priorityClassName/, config: /priorityClassName must be a DNS-1123 subdomain/ },
  {
    rule: 'extended resource: fractional',
    overrides: { extraResourceLimits: { 'example.com/fpga': '0.5' } },
    apply: (p) => (c(p).resources = { limits: { 'example.com/fpga': '500m' }, requests: { 'example.com/fpga': '500m' } }),
    field: /resources\.(limits|requests)\[example\.com\/fpga\].*integer/,
    config: /extraResourceLimits\.example\.com\/fpga: an extended resource must be a whole number/,
  },
  {
    rule: 'resource name: a non-standard name must be fully qualified',
    overrides: { extraResourceLimits: { gpu: '1' } },
    apply: (p) => (c(p).resources = { limits: { gpu: '1' } }),
    field: /resources\.limits\[gpu\].*fully qualified/,
    config: /extraResourceLimits\.gpu: a resource name must be a standard one .* or fully qualified/,
  },
  {
    rule: 'volume name',
    overrides: { volumes: [{ name: 'Scratch_Space', emptyDir: {} }] },
    apply: (p) => (p.spec.volumes = [{ name: 'Scratch_Space', emptyDir: {} }]),
    field: /spec\.volumes\[0\]\.name/,
    config: /volumes\[0\]\.name: a volume name must be a DNS-1123 label/,
  },
  {
    rule: 'Secret key name in a secret volume',
    overrides: { volumes: [{ name: 'creds', secret: { secretName: 'creds', items: [{ key: 'aws creds', path: 'aws' }] } }] },
    apply: (p) => (p.spec.volumes = [{ name: 'creds', secret: { secretName: 'creds', items: [{ key: 'aws creds', path: 'aws' }] } }]),
    field: /spec\.volumes\[0\]\.secret\.items\[0\]\.key/,
    config: /volumes\[0\]\.secret\.items\[0\]\.key: a Secret key must consist of/,
  },
  {
    rule: "subPath with '..'",
    overrides: { volumes: [{ name: 'data', emptyDir: {} }], volumeMounts: [{ name: 'data', mountPath: '/data', subPath: 'a/../../etc' }] },
    apply: (p) => {
      p.spec.volumes = [{ name: 'data', emptyDir: {} }];
      c(p).volumeMounts = [{ name: 'data', mountPath: '/data', subPath: 'a/../../etc' }];
    },
    field: /volumeMounts\[0\]\.subPath.*'\.\.'/,
    config: /volumeMounts\[0\]\.subPath: must not contain '\.\.'/,
  },
  {
    rule: 'absolute subPath',
    overrides: { volumes: [{ name: 'data', emptyDir: {} }], volumeMounts: [{ name: 'data', mountPath: '/data', subPath: '/etc' }] },
    apply: (p) => {
      p.spec.volumes = [{ name: 'data', emptyDir: {} }];
      c(p).volumeMounts = [{ name: 'data', mountPath: '/data', subPath: '/etc' }];
    },
    field: /volumeMounts\[0\]\.subPath.*relative/,
    config: /volumeMounts\[0\]\.subPath: must be a relative path/,
  },
];

describe('each rule: the stand-in refuses it as the real server would, spawngate refuses it at config load', () => {
  let fake: FakeApiServer;
  beforeAll(async () => {
    fake = await startFake();
  });
  afterAll(async () => {
    expect(fake.denied).toEqual([]);
    await fake.close();
  });

  test('the unbroken pod is accepted (the cases below fail for their rule only)', async () => {
    const res = await post(fake, 'pods', basePod());
    expect(res.status).toBe(201);
  });

  test.each(CASES)('$rule', async ({ overrides, apply, field, config }) => {
    const pod = basePod();
    pod.metadata.name = spec().name;
    apply(pod);
    const res = await post(fake, 'pods', pod);
    expect(res.status).toBe(422);
    expect(res.body.details.causes.map((x: Obj) => `${x.field}: ${x.message}`).join('\n')).toMatch(field);
    fake.invalid.length = 0;

    const load = loadWithProfile({ kubernetes: overrides });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(/profiles\.0\.kubernetes/);
    expect(load).toThrow(config);
  });

  test('hostPath volumes: refused by Pod Security "restricted" (403) and at config load', async () => {
    const restricted = await startFake({ namespaceLabels: { [role.namespace]: { 'pod-security.kubernetes.io/enforce': 'restricted' } } });
    try {
      const pod = basePod();
      pod.spec.volumes = [{ name: 'host', hostPath: { path: '/' } }];
      const res = await post(restricted, 'pods', pod);
      expect(res.status).toBe(403);
      expect(res.body.message).toMatch(/violates PodSecurity "restricted:latest": restricted volume types \(volumes "host" use hostPath\)/);
      const loose = basePod();
      delete loose.spec.securityContext.runAsNonRoot;
      delete c(loose).securityContext.runAsNonRoot;
      delete loose.spec.securityContext.seccompProfile;
      expect((await post(restricted, 'pods', loose)).body.message).toMatch(/runAsNonRoot != true.*seccompProfile/);
      // What spawngate builds passes.
      expect((await post(restricted, 'pods', basePod())).status).toBe(201);
      restricted.invalid.length = 0;
    } finally {
      await restricted.close();
    }
    expect(loadWithProfile({ kubernetes: { volumes: [{ name: 'host', hostPath: { path: '/' } }] } })).toThrow(/volumes\[0\]\.hostPath: volume kind refused under Pod Security "restricted"/);
  });

  test('port names (IANA_SVC_NAME): the stand-in refuses one; spawngate leaves such a port unnamed', async () => {
    const pod = basePod();
    c(pod).ports = [{ name: 'Shell_Port', containerPort: 5000 }];
    const res = await post(fake, 'pods', pod);
    expect(res.status).toBe(422);
    expect(res.body.details.causes[0].field).toBe('spec.containers[0].ports[0].name');
    fake.invalid.length = 0;
    const built = buildPod(spec({ ports: { Shell_Port: 5000, 'x--y': 5001, control: 5002, '12345': 5003 } }), { namespace: role.namespace, defaultRunAsUser: 1000 }).pod;
    expect(built.spec!.containers[0]!.ports).toEqual(
      // (JavaScript lists the integer-like key first)
      [{ containerPort: 5003 }, { containerPort: 5000 }, { containerPort: 5001 }, { name: 'control', containerPort: 5002 }],
    );
  });

  test('Secrets: key names and the 1 MiB limit; spawngate never builds a connection Secret past it', async () => {
    const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'x1' }, stringData: { 'bad key': 'v' } };
    expect((await post(fake, 'secrets', secret)).body.details.causes[0].field).toBe('stringData[bad key]');
    const big = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'x2' }, stringData: { 'connection.json': 'x'.repeat(1024 * 1024 + 1) } };
    const res = await post(fake, 'secrets', big);
    expect(res.status).toBe(422);
    expect(res.body.message).toMatch(/1048576 bytes/);
    fake.invalid.length = 0;
    const pod = { ...basePod(), metadata: { ...basePod().metadata, uid: 'u' } };
    expect(() => buildConnectionSecret(pod, 'x'.repeat(1024 * 1024 + 1))).toThrow(/larger than a Secret may be/);
  });

  test('extended resources: the request must equal the limit; spawngate requests GPUs and profile devices at their limit', async () => {
    const pod = basePod();
    c(pod).resources = { limits: { 'nvidia.com/gpu': '2' }, requests: { 'nvidia.com/gpu': '1' } };
    const res = await post(fake, 'pods', pod);
    expect(res.status).toBe(422);
    expect(res.body.message).toMatch(/requests\[nvidia\.com\/gpu\].*must be equal to nvidia\.com\/gpu limit/);
    fake.invalid.length = 0;
    const built = buildPod(spec({ resources: { gpuLimit: 2 }, overrides: { extraResourceLimits: { 'example.com/fpga': '1' } } }), { namespace: role.namespace, defaultRunAsUser: 1000 }).pod;
    expect(built.spec!.containers[0]!.resources).toEqual({ requests: { 'example.com/fpga': '1', 'nvidia.com/gpu': '2' }, limits: { 'example.com/fpga': '1', 'nvidia.com/gpu': '2' } });
  });

  test('group 0 (runAsGroup, fsGroup, supplementalGroups) is refused at config load: never root', () => {
    for (const k of [{ runAsGroup: 0 }, { fsGroup: 0 }, { supplementalGroups: [100, 0] }]) {
      expect(loadWithProfile({ kubernetes: k })).toThrow(/group 0 \(root\) is refused/);
    }
  });

  test('imagePullSecrets must name Secrets, which are DNS subdomains (ecr_creds cannot exist)', () => {
    expect(loadWithProfile({ kubernetes: { imagePullSecrets: ['ecr_creds'] } })).toThrow(/imagePullSecrets\.0: a Secret name must be a DNS-1123 subdomain/);
    expect(loadWithProfile({ kubernetes: { imagePullSecrets: [{ name: 'ecr_creds' }] } })).toThrow(/imagePullSecrets\.0\.name/);
    expect(loadWithProfile({ kubernetes: { imagePullSecrets: ['ecr-creds', { name: 'regcred.v2' }] } })).not.toThrow();
  });
});

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
