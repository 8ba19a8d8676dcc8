/**
 * What a real API server refuses, twice: the stand-in (apiserver-rules.ts) refuses each input the way
 * the real server would (422 with the field, or 403 from Pod Security), and spawngate refuses the same
 * input before sending anything — when the configuration loads (profiles' kubernetes blocks) or when
 * the pod is built. Env names: env-names.test.ts; requests and homes: resources-homes.test.ts.
 */
import fs from 'node:fs';
import { buildPod, buildPodSecret } from '../../../src/backends/kubernetes';
import { ConfigError } from '../../../src/config';
import { basePod, c, loadWithProfile as loadProfile, post, role, scratch, spec, startFake, type Obj } from './rules-helpers';
import type { FakeApiServer } from './fake-apiserver';

jest.setTimeout(60_000);

const dir = scratch();
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const loadWithProfile = (profile: Obj) => loadProfile(dir, profile);

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
    expect(() => buildPodSecret(pod, { 'connection.json': 'x'.repeat(1024 * 1024 + 1) })).toThrow(/larger than a Secret may be/);
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

  test("annotations near 256 KiB: spawngate's own annotations count, and the pod is refused before sending", () => {
    const nearly = { 'example.com/big': 'x'.repeat(256 * 1024 - 40) };
    expect(loadWithProfile({ kubernetes: { annotations: nearly } })).not.toThrow();
    expect(() => buildPod(spec({ overrides: { annotations: nearly } }), { namespace: role.namespace, defaultRunAsUser: 1000 })).toThrow(/annotations: total size \d+ bytes exceeds 262144/);
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

