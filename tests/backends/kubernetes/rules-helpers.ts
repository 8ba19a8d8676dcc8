/** What the rule tests share: a stand-in per test, spawngate's valid pod to break, raw POSTs, config loads. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { buildPod } from '../../../src/backends/kubernetes';
import type { WorkloadSpec } from '../../../src/backends/types';
import { loadConfig } from '../../../src/config';
import { SLEEP_FOREVER } from '../contract';
import { FakeApiServer, readDocumentedRole, type FakeApiServerOptions } from './fake-apiserver';

export type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
export const role = readDocumentedRole();
export const asRoot = process.getuid?.() === 0;

/** A scratch directory for one test file (removed by the caller's afterAll). */
export function scratch(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'sg-h18-rules-'));
}

export function spec(over: Partial<WorkloadSpec> = {}): WorkloadSpec {
  return { name: `sg-krn-r${Math.random().toString(36).slice(2, 10)}`, kind: 'kernel', labels: {}, command: ['/usr/bin/python3', '-c', SLEEP_FOREVER], env: {}, image: 'registry.example/kernel:1', ...over };
}

/** A pod as spawngate builds it with no overrides: valid, the base the cases break. */
export function basePod(): Obj {
  return JSON.parse(JSON.stringify(buildPod(spec(), { namespace: role.namespace, defaultRunAsUser: 1000 }).pod)) as Obj;
}

export async function startFake(opts: Partial<FakeApiServerOptions> = {}): Promise<FakeApiServer> {
  return new FakeApiServer({ namespace: role.namespace, rules: role.rules, ...opts }).start();
}

/** POSTs an object straight to the stand-in, as a client without spawngate's checks would. */
export async function post(fake: FakeApiServer, resource: 'pods' | 'secrets', body: Obj): Promise<{ status: number; body: Obj }> {
  const res = await fetch(`${fake.url}/api/v1/namespaces/${role.namespace}/${resource}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${fake.token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Obj };
}

export function loadWithProfile(dir: string, profile: Obj): () => unknown {
  const file = path.join(dir, `config-${Math.random().toString(36).slice(2)}.yaml`);
  fs.writeFileSync(file, YAML.stringify({ profiles: [{ slug: 'p', display_name: 'P', image: 'registry.example/nb:1', ...profile }] }));
  return () => loadConfig({ SPAWNGATE_CONFIG: file, SPAWNGATE_DATA_DIR: path.join(dir, 'data') });
}

export const c = (pod: Obj) => pod.spec.containers[0] as Obj;
