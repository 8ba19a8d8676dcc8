/**
 * Any hub user name on the kubernetes backend (API stand-in over HTTP, real @kubernetes/client-node):
 * pod names and label values stay within Kubernetes' syntax, the user label is escaped reversibly or
 * hashed (never collapsed: `a b`, `a-b` and `a-20b` get three values), the exact name is kept in the
 * original-labels annotation and is what `list()` reports, the home subPath is the exact name, and a pod
 * created under the earlier lossy naming is still found, reported and stopped.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createKubernetesBackend, labelValueFor } from '../../src/backends/kubernetes';
import { nameSlug, unescapeName, type WorkloadSpec } from '../../src/backends';
import { serverWorkloadName } from '../../src/profiles';
import { SLEEP_FOREVER } from '../backends/contract';
import { FakeApiServer, readDocumentedRole } from '../backends/kubernetes/fake-apiserver';
import { testLogger as silent } from '../support/logger';
import { pollUntil } from '../support/wait';

jest.setTimeout(60_000);

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const names = ['a b', 'a-b', 'a-20b', "o'neil", 'Ünïcode.User', 'zoë-łódź', 'alice', `${'ü'.repeat(60)}@example.org`];

/** The label value before the change (earlier kernel/server spec builders, then the backend's sanitizer). */
function legacyUserLabel(username: string): string {
  const v0 = username.toLowerCase().replace(/[^a-z0-9._-]/g, '-').slice(0, 63);
  if (v0.length <= 63 && LABEL_VALUE.test(v0)) return v0;
  const v = v0.replace(/[^-A-Za-z0-9_.]/g, '-').replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
  const hash = createHash('sha256').update(v0).digest('hex').slice(0, 8);
  return `${v.slice(0, 54).replace(/[^A-Za-z0-9]+$/, '')}-${hash}`.replace(/^-/, '');
}

describe('user names on the kubernetes backend', () => {
  let fake: FakeApiServer;
  let dir: string;
  let backend: ReturnType<typeof createKubernetesBackend>;
  const role = readDocumentedRole();

  beforeAll(async () => {
    fake = await new FakeApiServer({ namespace: role.namespace, rules: role.rules, runCommands: true }).start();
    dir = mkdtempSync(path.join(os.tmpdir(), 'sg-h15n-k8s-'));
    backend = createKubernetesBackend({
      namespace: role.namespace,
      kubeconfig: { from: 'file', path: fake.writeKubeconfig(dir) },
      logger: silent,
      rewatchDelayMs: 50,
      defaultRunAsUser: 1000, // the homes do not exist here: a shared uid, chosen explicitly
      home: { claimName: 'homes', root: '/home/jovyan-homes' },
    });
  });

  afterAll(async () => {
    await backend.close({ stopAll: true });
    expect(fake.denied).toEqual([]);
    expect(fake.invalid).toEqual([]);
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const spec = (name: string): WorkloadSpec => ({
    name: serverWorkloadName(name, ''),
    // A kernel: no working directory in the home, which the stand-in (running commands locally) lacks.
    kind: 'kernel',
    image: 'quay.io/jupyter/base-notebook:2025-01-01',
    labels: { 'spawngate/user': name },
    command: ['/usr/bin/python3', '-c', SLEEP_FOREVER],
    env: { KERNEL_USERNAME: name },
  });

  test('pods and labels stay in Kubernetes syntax, distinct per name, with the exact name kept and reported', async () => {
    for (const name of names) await backend.ensure(spec(name));
    const values = new Set<string>();
    for (const name of names) {
      const pod = fake.pods.get(serverWorkloadName(name, ''))!;
      expect(pod).toBeDefined();
      expect(pod.metadata.name).toMatch(DNS_LABEL);
      expect(pod.metadata.name.length).toBeLessThanOrEqual(63);
      const value = pod.metadata.labels['spawngate/user'] as string;
      expect(value).toMatch(LABEL_VALUE);
      expect(value.length).toBeLessThanOrEqual(63);
      expect(value).toBe(labelValueFor('spawngate/user', name));
      expect(value).toBe(nameSlug(name));
      values.add(value);
      // Reversible where it fits; otherwise the annotation is where the name is.
      if (!value.includes('--')) expect(unescapeName(value)).toBe(name);
      if (value !== name) expect(JSON.parse(pod.metadata.annotations['spawngate.io/original-labels'])['spawngate/user']).toBe(name);
      const mount = pod.spec.containers[0].volumeMounts.find((m: { name: string }) => m.name === 'spawngate-home');
      expect(mount).toMatchObject({ subPath: name, mountPath: path.join('/home/jovyan-homes', name) });
      expect(pod.spec.containers[0].env).toContainEqual({ name: 'KERNEL_USERNAME', value: name });
    }
    expect(values.size).toBe(names.length);
    const listed = await pollUntil(
      () => backend.list(),
      (l) => names.every((n) => l.some((w) => w.name === serverWorkloadName(n, '') && w.phase === 'running')),
      30_000,
    );
    for (const name of names) expect(listed.find((w) => w.name === serverWorkloadName(name, ''))!.labels?.['spawngate/user']).toBe(name);
    for (const name of names) await backend.stop(serverWorkloadName(name, ''), { graceSeconds: 0 });
  });

  test('a pod created under the earlier lossy naming is still found, reported and stopped', async () => {
    const user = 'Ünïcode.Legacy';
    const hash = createHash('sha256').update(`${user}/`).digest('hex').slice(0, 10);
    const legacyName = `sg-srv-n-code-legacy-${hash}`;
    // Left by a spawngate before the change; this one starts after it and lists it at start-up.
    fake.preloadPod(legacyName, {
      'app.kubernetes.io/managed-by': 'spawngate',
      'app.kubernetes.io/component': 'server',
      'spawngate/user': legacyUserLabel(user),
    });
    const upgraded = createKubernetesBackend({ namespace: role.namespace, kubeconfig: { from: 'file', path: fake.writeKubeconfig(dir) }, logger: silent, rewatchDelayMs: 50, defaultRunAsUser: 1000 });
    try {
      expect((await upgraded.state(legacyName)).phase).toBe('running');
      expect((await upgraded.list()).map((w) => w.name)).toContain(legacyName);
      await upgraded.stop(legacyName, { graceSeconds: 0 });
      await pollUntil(
        async () => fake.pods.has(legacyName),
        (present) => !present,
        30_000,
      );
    } finally {
      await upgraded.close();
    }
  });
});
