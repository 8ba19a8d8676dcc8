/**
 * The API stand-in with a backend factory, for the kubernetes backend tests that need several backends
 * on one stand-in (installations, replicas). `cleanup` closes them all and asserts nothing was denied
 * by RBAC or refused as invalid.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createKubernetesBackend, type KubernetesBackend, type KubernetesBackendOptions } from '../../../src/backends/kubernetes';
import { testLogger as silent } from '../../support/logger';
import { FakeApiServer, readDocumentedRole, type FakeApiServerOptions } from './fake-apiserver';

export async function standIn(extra: Partial<KubernetesBackendOptions> = {}, fakeOptions: Partial<FakeApiServerOptions> = {}) {
  const role = readDocumentedRole();
  const fake = await new FakeApiServer({ namespace: role.namespace, rules: role.rules, runCommands: true, ...fakeOptions }).start();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sg-standin-'));
  const kubeconfig = fake.writeKubeconfig(dir);
  const backends: KubernetesBackend[] = [];
  // The tests' pods have no home: a shared uid, chosen explicitly (spawngate never invents one).
  const make = (more: Partial<KubernetesBackendOptions> = {}): KubernetesBackend => {
    const b = createKubernetesBackend({ namespace: role.namespace, kubeconfig: { from: 'file', path: kubeconfig }, logger: silent, defaultRunAsUser: 1000, ...extra, ...more });
    backends.push(b);
    return b;
  };
  const cleanup = async () => {
    fake.behaviour.kubelet = 'ok';
    fake.behaviour.clearFailures();
    for (const b of backends) await b.close().catch(() => undefined);
    expect(fake.denied).toEqual([]);
    expect(fake.invalid).toEqual([]);
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return { fake, make, cleanup };
}
