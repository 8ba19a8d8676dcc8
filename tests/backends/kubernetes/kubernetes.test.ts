/**
 * The kubernetes backend against the API stand-in (real @kubernetes/client-node over HTTP): the shared
 * contract suite, then what only Kubernetes has — failure reasons from pod status, watch disconnects and
 * 410 relists, 409 adoption, the connection Secret, and RBAC (every call within docs/kubernetes-rbac.md).
 */
import { chownSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  buildPod,
  createKubernetesBackend,
  createNamespacedKubernetesBackend,
  experimentNamespace,
  podManifestOptions,
  type KubernetesBackend,
  type KubernetesBackendOptions,
} from '../../../src/backends/kubernetes';
import { PermanentBackendError, UnsupportedError, type WorkloadEvent, type WorkloadSpec } from '../../../src/backends/types';
import { ConfigError } from '../../../src/config';
import { SLEEP_FOREVER, testBackend } from '../contract';
import { pollUntil as waitFor } from '../../support/wait';
import { FakeApiServer, readDocumentedRole, type FakeApiServerOptions } from './fake-apiserver';
import { testLogger as silent } from '../../support/logger';

const PY = '/usr/bin/python3';

async function setup(extra: Partial<KubernetesBackendOptions> = {}, fakeOptions: Partial<FakeApiServerOptions> = {}) {
  const role = readDocumentedRole();
  const fake = await new FakeApiServer({ namespace: role.namespace, rules: role.rules, runCommands: true, ...fakeOptions }).start();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sg-k8s-'));
  const kubeconfig = fake.writeKubeconfig(dir);
  const make = () =>
    createKubernetesBackend({
      namespace: role.namespace,
      kubeconfig: { from: 'file', path: kubeconfig },
      logger: silent,
      rewatchDelayMs: 50,
      defaultRunAsUser: 1000, // the test's pods have no home: a shared uid, chosen explicitly
      ...extra,
    });
  const backend = make();
  const cleanup = async () => {
    expect(fake.denied).toEqual([]);
    expect(fake.invalid).toEqual([]);
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return { fake, backend, cleanup, another: make };
}

function makeSpec(overrides: Partial<WorkloadSpec> & { name: string }): WorkloadSpec {
  return {
    kind: 'kernel',
    labels: { 'spawngate.io/test': 'yes' },
    command: [PY, '-c', SLEEP_FOREVER],
    env: {},
    image: 'quay.io/jupyter/base-notebook:2025-01-01',
    ...overrides,
  };
}

testBackend({
  name: 'kubernetes (API stand-in running pod commands locally)',
  create: async () => {
    const { fake, backend, cleanup, another } = await setup();
    return {
      backend,
      cleanup,
      another,
      makeForeign: async (name) => {
        fake.preloadPod(name, { app: 'someone-else' });
        return { exists: async () => fake.pods.has(name), remove: async () => void fake.pods.delete(name) };
      },
    };
  },
  makeSpec,
});

describe('kubernetes backend', () => {
  let fake: FakeApiServer;
  let backend: KubernetesBackend;
  let cleanup: () => Promise<void>;
  let n = 0;
  const name = () => `sg-k8s-${process.pid}-${++n}`;

  beforeEach(async () => {
    ({ fake, backend, cleanup } = await setup({}, { nodeGpus: 1 }));
  });
  afterEach(async () => {
    await backend.close({ stopAll: true });
    await cleanup();
  });

  test('signal is UnsupportedError (the API has no signal verb) and leaves the pod running', async () => {
    const spec = makeSpec({ name: name() });
    await backend.ensure(spec);
    await waitFor(() => backend.state(spec.name), (s) => s.phase === 'running');
    const err = await backend.signal(spec.name, 'SIGINT').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsupportedError);
    expect((err as Error).message).toMatch(/no signal verb/);
    expect((await backend.state(spec.name)).phase).toBe('running');
    expect(fake.requests.filter((r) => r.resource === 'pods/exec' || r.verb === 'signal')).toEqual([]);
  });

  test('happy path: progress events, running at the pod IP, manifest as documented', async () => {
    const events: WorkloadEvent[] = [];
    const spec = makeSpec({
      name: name(),
      kind: 'server',
      labels: { 'hub.jupyter.org/username': 'Alice@Example.com' },
      ports: { default: 8888 },
      resources: { cpuRequest: 0.5, cpuLimit: 2, memoryRequestMiB: 512, memoryLimitMiB: 4096, gpuLimit: 1 },
      overrides: { nodeSelector: { pool: 'gpu' }, runAsUser: 1234, runAsGroup: 100, fsGroup: 100, imagePullSecrets: ['regcred'] },
    });
    const first = await backend.ensure(spec, (e) => events.push(e));
    expect(first.phase).toBe('pending');
    const running = await waitFor(() => backend.state(spec.name), (s) => s.phase === 'running');
    expect(running).toMatchObject({ phase: 'running', ports: { default: 8888 } });
    expect(running.host).toMatch(/^127\.\d+\.\d+\.\d+$/);
    expect(running.host).not.toBe('127.0.0.1');
    expect(running.labels?.['hub.jupyter.org/username']).toBe('Alice@Example.com');
    await waitFor(async () => events, (e) => e.some((x) => x.message?.startsWith('Started')));
    expect(events.filter((e) => e.type === 'progress').map((e) => e.message!.split(':')[0])).toEqual(
      expect.arrayContaining(['Scheduled', 'Pulling', 'Pulled', 'Started']),
    );
    const pod = fake.received.find((o) => o.kind === 'Pod' && o.metadata.name === spec.name)!;
    expect(pod.metadata.labels['hub.jupyter.org/username']).toMatch(/^Alice-Example.com-[0-9a-f]{8}$/);
    expect(pod.metadata.labels['app.kubernetes.io/managed-by']).toBe('spawngate');
    expect(pod.spec.restartPolicy).toBe('Never');
    expect(pod.spec.automountServiceAccountToken).toBe(false);
    expect(pod.spec.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 1234, runAsGroup: 100, fsGroup: 100 });
    expect(pod.spec.containers[0].securityContext).toEqual({ runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });
    expect(pod.spec.containers[0].resources).toEqual({
      requests: { cpu: '500m', memory: '512Mi', 'nvidia.com/gpu': '1' },
      limits: { cpu: '2000m', memory: '4096Mi', 'nvidia.com/gpu': '1' },
    });
    expect(pod.spec.nodeSelector).toEqual({ pool: 'gpu' });
    expect(pod.spec.imagePullSecrets).toEqual([{ name: 'regcred' }]);
  });

  test('kernel connection info goes to a Secret owned by the pod, not to the pod env', async () => {
    const connection = JSON.stringify({ shell_port: 1, key: 'very-secret' });
    const spec = makeSpec({ name: name(), env: { SPAWNGATE_CONNECTION_INFO: connection, KERNEL_ID: 'k1' } });
    await backend.ensure(spec);
    await waitFor(() => backend.state(spec.name), (s) => s.phase === 'running');
    const pod = fake.pods.get(spec.name)!;
    const [secret, ...more] = fake.secretsOwnedBy(spec.name);
    expect(more).toEqual([]);
    expect(JSON.stringify(pod.spec)).not.toContain('very-secret');
    expect(secret!.stringData['connection.json']).toBe(connection);
    expect(secret!.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'Pod', name: spec.name, uid: pod.metadata.uid })]);
    expect(pod.spec.containers[0].env).toEqual(
      expect.arrayContaining([
        { name: 'SPAWNGATE_CONNECTION_SOURCE', value: '/var/run/spawngate/connection.json' },
        { name: 'KERNEL_POD_NAME', value: spec.name },
        { name: 'KERNEL_NAMESPACE', value: fake.namespace },
      ]),
    );
    expect(pod.spec.containers[0].volumeMounts).toEqual([expect.objectContaining({ mountPath: '/var/run/spawngate', readOnly: true })]);
    await backend.stop(spec.name, { graceSeconds: 0 });
    expect(fake.secretsOwnedBy(spec.name)).toEqual([]); // garbage-collected with its owner
  });

  const failures: [string, (s: WorkloadSpec) => WorkloadSpec, ((name: string) => void) | undefined, RegExp][] = [
    ['ErrImagePull', (s) => ({ ...s, image: 'registry.example/does-not-exist:1' }), undefined, /^(ErrImagePull|ImagePullBackOff)/],
    ['Unschedulable', (s) => ({ ...s, overrides: { nodeSelector: { 'spawngate.test/unschedulable': 'true' } } }), undefined, /^Unschedulable: 0\/3 nodes/],
    ['OOMKilled', (s) => s, (n) => fake.oomKill(n), /^OOMKilled$/],
    ['Evicted', (s) => s, (n) => fake.evict(n), /^Evicted: The node was low on resource: memory/],
  ];
  test.each(failures)('%s is reported with its reason from pod status', async (_label, shape, act, reason) => {
    const spec = shape(makeSpec({ name: name() }));
    const events: WorkloadEvent[] = [];
    const unsubscribe = backend.watch((e) => events.push(e));
    await backend.ensure(spec);
    if (act) {
      await waitFor(() => backend.state(spec.name), (s) => s.phase === 'running');
      act(spec.name);
    }
    // From pod status as soon as the kubelet shows it; no timeout is involved (speed is measured in bench/).
    const state = await waitFor(() => backend.state(spec.name), (s) => s.phase === 'exited', 10_000, 20);
    expect(state.phase).toBe('exited');
    expect(state.reason).toMatch(reason);
    expect(events.some((e) => e.type === 'state' && e.state?.phase === 'exited' && reason.test(e.state.reason ?? ''))).toBe(true);
    unsubscribe();
  });

  test('a dropped watch resumes; after 410 Gone it relists and reports a pod deleted meanwhile', async () => {
    const a = makeSpec({ name: name() });
    const b = makeSpec({ name: name() });
    await backend.ensure(a);
    await backend.ensure(b);
    await waitFor(() => backend.state(b.name), (s) => s.phase === 'running');
    const events: WorkloadEvent[] = [];
    backend.watch((e) => events.push(e));

    fake.dropWatches(); // plain disconnect: resumes from its resourceVersion, no relist
    const listsBefore = fake.requests.filter((r) => r.verb === 'list' && r.resource === 'pods').length;
    await backend.stop(a.name, { graceSeconds: 0 });
    expect(events.some((e) => e.name === a.name && e.state?.phase === 'missing')).toBe(true);
    expect(fake.requests.filter((r) => r.verb === 'list' && r.resource === 'pods').length).toBe(listsBefore);

    fake.removePodSilently(b.name); // the DELETED event is lost...
    fake.compact(); // ...and history expires: the resumed watch gets 410
    fake.dropWatches();
    await waitFor(async () => events, (e) => e.some((x) => x.name === b.name && x.state?.phase === 'missing'), 5000);
    expect((await backend.state(b.name)).phase).toBe('missing');
    expect(fake.requests.filter((r) => r.verb === 'list' && r.resource === 'pods').length).toBeGreaterThan(listsBefore);
  });

  test('409 on create adopts our pod; a foreign or different pod of that name is refused', async () => {
    const spec = makeSpec({ name: name() });
    const first = await backend.ensure(spec);
    const again = await backend.ensure(spec);
    expect(again.ref).toEqual(first.ref);
    expect(fake.requests.filter((r) => r.verb === 'create' && r.resource === 'pods')).toHaveLength(2);
    await expect(backend.ensure({ ...spec, env: { CHANGED: '1' } })).rejects.toThrow(/different spec/);

    const foreign = makeSpec({ name: name() });
    await backend.ensure(foreign);
    delete fake.pods.get(foreign.name)!.metadata.labels['app.kubernetes.io/managed-by'];
    const err = await backend.ensure(foreign).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentBackendError);
    expect((err as Error).message).toMatch(/not managed by spawngate/);
  });

  test('stop on a pod already gone resolves; writes per launch stay at pod + secret', async () => {
    const spec = makeSpec({ name: name(), env: { SPAWNGATE_CONNECTION_INFO: '{}' } });
    const before = fake.requests.length;
    await backend.ensure(spec);
    const writes = fake.requests.slice(before).filter((r) => r.verb === 'create' || r.verb === 'delete');
    expect(writes.map((r) => r.resource)).toEqual(['pods', 'secrets']);
    await waitFor(() => backend.state(spec.name), (s) => s.phase === 'running');
    fake.removePodSilently(spec.name);
    await expect(backend.stop(spec.name, { graceSeconds: 1 })).resolves.toBeUndefined();
    expect((await backend.state(spec.name)).phase).toBe('missing');
  });

  test('an invalid object is refused by the API (422) and surfaces as PermanentBackendError', async () => {
    // affinity is the one structure spawngate passes through unchecked: the API server's schema decides.
    const spec = makeSpec({ name: name(), overrides: { affinity: { podAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: {} }] } } } });
    const err = await backend.ensure(spec).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentBackendError);
    expect((err as Error).message).toMatch(/422.*affinity/);
    fake.invalid.length = 0; // expected here
  });

  test('a toleration the API server would refuse is refused before anything is sent, naming the field', async () => {
    const before = fake.requests.length;
    const spec = makeSpec({ name: name(), overrides: { tolerations: [{ effect: 42 }] } });
    const err = await backend.ensure(spec).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentBackendError);
    expect((err as Error).message).toMatch(/tolerations\[0\]\.effect: must be a string/);
    expect(fake.requests.slice(before).filter((r) => r.verb === 'create')).toEqual([]);
  });

  test('bad specs are refused before any API call', async () => {
    await expect(backend.ensure(makeSpec({ name: name(), overrides: { runAsUser: 0 } }))).rejects.toThrow(/root/);
    await expect(backend.ensure(makeSpec({ name: name(), overrides: { privileged: true } }))).rejects.toThrow(/unknown profile override/);
    await expect(backend.ensure(makeSpec({ name: 'Not_A_Label' }))).rejects.toThrow(/DNS label/);
  });
});

describe('kubernetes backend: reads from the cache, namespaces per experiment', () => {
  test('state() never calls the API, whatever the rate; a deleted pod keeps its reason', async () => {
    const { fake, backend, cleanup } = await setup();
    try {
      const spec = makeSpec({ name: `sg-k8s-cache-${process.pid}` });
      await backend.ensure(spec);
      const before = fake.requests.length;
      const podReads = () => fake.requests.slice(before).filter((r) => r.resource === 'pods' && (r.verb === 'get' || r.verb === 'list'));
      await waitFor(() => backend.state(spec.name), (s) => s.phase === 'running', 10_000, 1);
      for (let i = 0; i < 200; i++) await backend.state(`sg-unknown-${i}`);
      expect(podReads()).toEqual([]);
      fake.deleteExternally(spec.name);
      const gone = await waitFor(() => backend.state(spec.name), (s) => s.phase === 'missing', 10_000, 5);
      expect(gone.reason).toBe('pod deleted (not by spawngate)');
      expect(podReads()).toEqual([]);
    } finally {
      await backend.close({ stopAll: true });
      await cleanup();
    }
  });

  test('a pod created again under its name (kernel restart) gets its own Secret while the old one awaits GC', async () => {
    const { fake, backend, cleanup } = await setup({}, { gcDelayMs: 60_000 });
    try {
      const spec = makeSpec({ name: `sg-k8s-again-${process.pid}`, env: { SPAWNGATE_CONNECTION_INFO: '{"key":"k"}' } });
      await backend.ensure(spec);
      await waitFor(() => backend.state(spec.name), (s) => s.phase === 'running');
      const firstUid = fake.pods.get(spec.name)!.metadata.uid;
      await backend.stop(spec.name, { graceSeconds: 0 });
      expect(fake.secretsOwnedBy(spec.name)).toHaveLength(1); // the old one, not yet collected
      await backend.ensure(spec);
      const running = await waitFor(() => backend.state(spec.name), (s) => s.phase === 'running');
      expect(running.phase).toBe('running');
      const pod = fake.pods.get(spec.name)!;
      expect(pod.metadata.uid).not.toBe(firstUid);
      const mounted = fake.secrets.get(pod.spec.volumes.find((v: { secret?: unknown }) => v.secret).secret.secretName)!;
      expect(mounted.metadata.ownerReferences[0].uid).toBe(pod.metadata.uid);
    } finally {
      await backend.close({ stopAll: true });
      await cleanup();
    }
  });

  test("an experiment's kernels go to its namespace; the namespaces watched are bounded", async () => {
    const role = readDocumentedRole();
    const fake = await new FakeApiServer({ namespace: role.namespace, extraNamespaces: ['sg-exp-a', 'sg-exp-b'], rules: role.rules, runCommands: true }).start();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sg-k8s-ns-'));
    const backend = createNamespacedKubernetesBackend({
      namespace: role.namespace,
      kubeconfig: { from: 'file', path: fake.writeKubeconfig(dir) },
      logger: silent,
      defaultRunAsUser: 1000,
      experimentNamespaces: { template: 'sg-exp-{experiment}', maxNamespaces: 2, discover: async () => ['a'] },
    });
    try {
      const server = makeSpec({ name: `sg-srv-ns-${process.pid}`, kind: 'server' });
      const kernel = makeSpec({ name: `sg-krn-ns-${process.pid}`, labels: { 'spawngate/experiment': 'a' } });
      await backend.ensure(server);
      await backend.ensure(kernel);
      expect(fake.pods.get(server.name)!.metadata.namespace).toBe(role.namespace);
      expect(fake.pods.get(kernel.name)!.metadata.namespace).toBe('sg-exp-a');
      await waitFor(() => backend.state(kernel.name), (s) => s.phase === 'running');
      expect((await backend.list()).map((s) => s.name).sort()).toEqual([kernel.name, server.name].sort());
      // A third namespace would exceed max_namespaces: refused with a message naming the limit.
      await expect(backend.ensure(makeSpec({ name: `sg-krn-nsb-${process.pid}`, labels: { 'spawngate/experiment': 'b' } }))).rejects.toThrow(/max_namespaces \(2\)/);
      await backend.stop(kernel.name, { graceSeconds: 0 });
      expect(fake.pods.has(kernel.name)).toBe(false);
      expect(fake.denied).toEqual([]);
    } finally {
      await backend.close({ stopAll: true });
      await fake.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a namespace without the Role fails its launch with the API\'s 403; once the Role exists the next launch works', async () => {
    const role = readDocumentedRole();
    const fake = await new FakeApiServer({ namespace: role.namespace, rules: role.rules, runCommands: true }).start();
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sg-k8s-ns-'));
    const backend = createNamespacedKubernetesBackend({
      namespace: role.namespace,
      kubeconfig: { from: 'file', path: fake.writeKubeconfig(dir) },
      logger: silent,
      defaultRunAsUser: 1000,
      experimentNamespaces: { template: 'sg-exp-{experiment}', maxNamespaces: 3 },
    });
    try {
      const kernel = makeSpec({ name: `sg-krn-norole-${process.pid}`, labels: { 'spawngate/experiment': 'c' } });
      const err = await backend.ensure(kernel).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PermanentBackendError);
      expect((err as Error).message).toMatch(/403.*forbidden: cannot list pods in namespace sg-exp-c/);
      expect(fake.denied).toEqual(['list pods in namespace sg-exp-c']);
      fake.denied.length = 0;
      fake.namespaces.add('sg-exp-c'); // the admin binds the Role there
      await waitFor(
        () => backend.ensure(kernel).then((s) => s.phase, () => 'refused'),
        (phase) => phase !== 'refused',
      );
      expect(fake.pods.get(kernel.name)?.metadata.namespace).toBe('sg-exp-c');
      expect(fake.denied).toEqual([]);
    } finally {
      await backend.close({ stopAll: true });
      await fake.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('experiment names become DNS-safe namespaces; a template that cannot make one is refused', () => {
    expect(experimentNamespace('sg-{experiment}', 'climate')).toBe('sg-climate');
    expect(experimentNamespace('sg-{experiment}', 'Climate Lab')).toMatch(/^sg-climate-lab-[0-9a-f]{6}$/);
    expect(() => experimentNamespace(`${'x'.repeat(60)}-{experiment}`, 'climate')).toThrow(PermanentBackendError);
  });

  test('home volume: subPath = user at the home-tree path, run as the home owner, never root', async () => {
    const homes = mkdtempSync(path.join(os.tmpdir(), 'sg-k8s-homes-'));
    mkdirSync(path.join(homes, 'carol'));
    mkdirSync(path.join(homes, 'rooty'));
    if (process.getuid?.() === 0) chownSync(path.join(homes, 'carol'), 4321, 4322);
    const settings = { namespace: 'ns', defaultRunAsUser: 1000, home: { claimName: 'efs', root: homes } };
    const carol = buildPod(makeSpec({ name: 'sg-c', env: { KERNEL_USERNAME: 'carol' } }), await podManifestOptions(makeSpec({ name: 'sg-c', env: { KERNEL_USERNAME: 'carol' } }), settings)).pod;
    expect(carol.spec!.volumes).toEqual([{ name: 'spawngate-home', persistentVolumeClaim: { claimName: 'efs' } }]);
    expect(carol.spec!.containers[0]!.volumeMounts).toEqual([{ name: 'spawngate-home', mountPath: path.join(homes, 'carol'), subPath: 'carol' }]);
    expect(carol.spec!.containers[0]!.env).toEqual(expect.arrayContaining([{ name: 'HOME', value: path.join(homes, 'carol') }]));
    if (process.getuid?.() === 0) expect(carol.spec!.securityContext).toMatchObject({ runAsUser: 4321, runAsGroup: 4322, fsGroup: 4322 });
    // A home owned by root (or unreadable) falls back to the configured uid, never 0.
    const rootSpec = makeSpec({ name: 'sg-r', env: { KERNEL_USERNAME: 'rooty' } });
    const rooty = buildPod(rootSpec, await podManifestOptions(rootSpec, settings)).pod;
    expect(rooty.spec!.securityContext!.runAsUser).toBe(process.getuid?.() === 0 ? 1000 : process.getuid!());
    await expect(podManifestOptions(makeSpec({ name: 'sg-x', env: { KERNEL_USERNAME: '../etc' } }), settings)).rejects.toThrow(PermanentBackendError);
    rmSync(homes, { recursive: true, force: true });
  });
});

describe('kubernetes backend: stop touches only its own pods', () => {
  test('a pod of that name without the spawngate label is left alone (stop refuses it); one the cache has not seen yet is deleted', async () => {
    const { fake, backend, cleanup } = await setup();
    try {
      await backend.state('warm-up');
      fake.preloadPod('sg-krn-foreign', { app: 'someone-else' });
      // The contract (Backend.stop): a workload spawngate did not create is refused, as on docker.
      await expect(backend.stop('sg-krn-foreign', { graceSeconds: 0 })).rejects.toThrow(PermanentBackendError);
      expect(fake.pods.has('sg-krn-foreign')).toBe(true);
      expect(fake.requests.filter((r) => r.verb === 'delete')).toEqual([]);
      // Labelled by spawngate but put there behind the watch's back (as if by another replica just now).
      fake.preloadPod('sg-krn-other-replica', { 'app.kubernetes.io/managed-by': 'spawngate' });
      await backend.stop('sg-krn-other-replica', { graceSeconds: 0 });
      expect(fake.pods.has('sg-krn-other-replica')).toBe(false);
    } finally {
      await backend.close({ stopAll: true });
      await cleanup();
    }
  });
});

test('stop() of a cached pod needs one delete call and no reads', async () => {
  const { fake, backend, cleanup } = await setup();
  try {
    const spec = makeSpec({ name: `sg-k8s-onedelete-${process.pid}` });
    await backend.ensure(spec);
    await waitFor(() => backend.state(spec.name), (s) => s.phase === 'running');
    const before = fake.requests.length;
    await backend.stop(spec.name, { graceSeconds: 1 });
    expect(fake.requests.slice(before).filter((r) => r.resource === 'pods')).toEqual([{ verb: 'delete', resource: 'pods', name: spec.name, namespace: fake.namespace }]);
    expect((await backend.state(spec.name)).phase).toBe('missing');
  } finally {
    await backend.close({ stopAll: true });
    await cleanup();
  }
});

test('credentials that cannot be loaded are a configuration error naming where they were looked for', async () => {
  const backend = createKubernetesBackend({ namespace: 'ns', kubeconfig: { from: 'file', path: '/nonexistent/kubeconfig' }, logger: silent });
  const err = await backend.list().catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ConfigError);
  expect((err as Error).message).toMatch(/cannot load credentials from kubernetes\.kubeconfig \(\/nonexistent\/kubeconfig\)/);
  await backend.close();
});
