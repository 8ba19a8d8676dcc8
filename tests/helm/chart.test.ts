/**
 * helm/spawngate: rendered with `helm template`, or without helm by tools/chart-render (Helm's engine:
 * text/template + sprig), under default values, the EKS example and option combinations (scenarios.ts);
 * every document validated against the Kubernetes schemas
 * (kubernetes-models); least privilege, pod security, NetworkPolicies and secret handling checked;
 * values.schema.json checked to refuse bad values.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Ajv from 'ajv';
import { fileConfigJsonSchema } from '../../src/config';
import YAML from 'yaml';
import { buildPod } from '../../src/backends/kubernetes';
import { ADMIN_TOKEN, DB_URL, EKS, external, HUB_TOKEN, REDIS_URL, scenarios, SECRET_ENV, SECRET_KEY } from './scenarios';
import { CHART, chartRenderBinary, defaultRenderer, K8sObject, mergeValues, nth, parseDocs, render, renderRaw, REPO, selects } from './chart-render';

jest.setTimeout(900_000);

// @kubernetes-models/prometheus-operator is ESM only (as in dashboard.test.ts)
const importEsm = eval('(specifier) => import(specifier)') as (specifier: string) => Promise<unknown>;

const renders: Record<string, K8sObject[]> = {};
const rendered = (name: string): K8sObject[] => {
  const docs = renders[name];
  if (!docs) throw new Error(`scenario ${name} was not rendered`);
  return docs;
};
let rbacRules: unknown;

beforeAll(() => {
  if (defaultRenderer() === 'chart-render') chartRenderBinary(); // build once (cached) before the first render
  for (const [name, o] of Object.entries(scenarios)) renders[name] = render(o);
  const doc = readFileSync(path.join(REPO, 'docs/kubernetes-rbac.md'), 'utf8');
  const block = /```yaml\n([\s\S]*?)```/.exec(doc);
  if (!block?.[1]) throw new Error('docs/kubernetes-rbac.md has no yaml block');
  const role = YAML.parse(block[1]) as K8sObject;
  expect(role.kind).toBe('Role');
  rbacRules = role.rules;
});

function model(obj: K8sObject): { validate(): void } {
  // kubernetes-models lays out one module per apiVersion/kind: "apps/v1" → kubernetes-models/apps/v1/Deployment
  let mod: Record<string, new (o: unknown) => { validate(): void }>;
  try {
    mod = require(`kubernetes-models/${obj.apiVersion}/${obj.kind}`); // eslint-disable-line @typescript-eslint/no-require-imports
  } catch (e) {
    throw new Error(`no kubernetes-models schema for ${obj.apiVersion} ${obj.kind}`, { cause: e });
  }
  const Model = mod[obj.kind];
  if (!Model) throw new Error(`kubernetes-models has no ${obj.kind} export`);
  return new Model(obj);
}

function podSpecs(docs: K8sObject[]): { owner: string; spec: any; labels: Record<string, string> }[] { // eslint-disable-line @typescript-eslint/no-explicit-any
  return docs
    .filter((d) => ['Deployment', 'StatefulSet', 'Job', 'DaemonSet'].includes(d.kind))
    .map((d) => ({ owner: `${d.kind}/${d.metadata.name}`, spec: d.spec.template.spec, labels: d.spec.template.metadata?.labels ?? {} }));
}

function byKind(docs: K8sObject[], kind: string): K8sObject[] {
  return docs.filter((d) => d.kind === kind);
}

function one(docs: K8sObject[], kind: string, nameSuffix: string): K8sObject {
  const found = docs.filter((d) => d.kind === kind && d.metadata.name.endsWith(nameSuffix));
  if (found.length !== 1 || !found[0]) throw new Error(`expected one ${kind} *${nameSuffix}, found ${found.length}`);
  return found[0];
}

describe.each(Object.keys(scenarios))('chart rendered with %s', (name) => {
  const docs = () => rendered(name);

  test('every document is a valid Kubernetes object', () => {
    expect(docs().length).toBeGreaterThanOrEqual(4);
    for (const d of docs()) {
      expect(d.metadata?.name).toBeTruthy();
      try {
        model(d).validate();
      } catch (e) {
        throw new Error(`${d.kind}/${d.metadata.name}: ${(e as Error).message}`, { cause: e });
      }
    }
  });

  test('no cluster-scoped RBAC; each Role grants exactly docs/kubernetes-rbac.md and is bound to our ServiceAccount', () => {
    expect(docs().filter((d) => /^Cluster(Role|RoleBinding)$/.test(d.kind))).toEqual([]);
    const roles = byKind(docs(), 'Role');
    for (const r of roles) expect(r.rules).toEqual(rbacRules);
    const bindings = byKind(docs(), 'RoleBinding');
    expect(bindings.length).toBe(roles.length);
    for (const b of bindings) {
      expect(b.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: b.metadata.name });
      expect(roles.some((r) => r.metadata.name === b.roleRef.name && r.metadata.namespace === b.metadata.namespace)).toBe(true);
      expect(b.subjects).toHaveLength(1);
      expect(b.subjects[0].kind).toBe('ServiceAccount');
      const api = one(docs(), 'Deployment', '-api');
      expect(b.subjects[0].name).toBe(api.spec.template.spec.serviceAccountName);
      expect(b.subjects[0].namespace).toBe(api.metadata.namespace);
    }
  });

  test('every container: non-root, read-only root, no privilege escalation, resources set', () => {
    for (const { owner, spec } of podSpecs(docs())) {
      expect(spec.securityContext?.runAsNonRoot).toBe(true);
      expect(spec.securityContext?.runAsUser).toBeGreaterThan(0);
      for (const c of [...(spec.initContainers ?? []), ...spec.containers]) {
        const where = `${owner} container ${c.name}`;
        expect([where, c.securityContext?.runAsNonRoot]).toEqual([where, true]);
        expect([where, c.securityContext?.readOnlyRootFilesystem]).toEqual([where, true]);
        expect([where, c.securityContext?.allowPrivilegeEscalation]).toEqual([where, false]);
        expect([where, c.securityContext?.capabilities?.drop]).toEqual([where, ['ALL']]);
        expect([where, c.securityContext?.runAsUser ?? 1]).not.toEqual([where, 0]);
        for (const kind of ['requests', 'limits']) {
          expect([where, kind, Object.keys(c.resources?.[kind] ?? {}).sort()]).toEqual([where, kind, ['cpu', 'memory']]);
        }
      }
    }
  });

  test('secrets are never inline: not in ConfigMaps, not as plain env values', () => {
    const secretValues = [HUB_TOKEN, ADMIN_TOKEN, SECRET_KEY, DB_URL, REDIS_URL, 'db-password-xyz', 'redis-password-xyz'];
    for (const cm of byKind(docs(), 'ConfigMap')) {
      const text = JSON.stringify(cm);
      for (const s of secretValues) expect(text).not.toContain(s);
      expect(text).not.toMatch(/postgres(ql)?:\/\/|rediss?:\/\/|SPAWNGATE_(HUB|ADMIN)_TOKEN/);
    }
    for (const { owner, spec } of podSpecs(docs())) {
      for (const c of spec.containers) {
        for (const e of c.env ?? []) {
          if (SECRET_ENV.includes(e.name) || /PASSWORD|CLIENT_SECRET/.test(e.name)) {
            expect([owner, e.name, e.value]).toEqual([owner, e.name, undefined]);
            expect(e.valueFrom?.secretKeyRef?.name).toBeTruthy();
          }
          if (e.value) for (const s of secretValues) expect(e.value).not.toContain(s);
        }
      }
    }
  });

  test('API and worker Deployments: commands, probes, rolling updates', () => {
    const api = one(docs(), 'Deployment', '-api');
    const worker = one(docs(), 'Deployment', '-worker');
    const a = api.spec.template.spec.containers[0];
    const w = worker.spec.template.spec.containers[0];
    expect(a.args).toEqual(['serve', '--no-workers']);
    expect(w.args).toEqual(['worker']);
    const port = a.ports.find((p: { name: string }) => p.name === 'http').containerPort;
    expect(a.env.find((e: { name: string }) => e.name === 'SPAWNGATE_PORT').value).toBe(String(port));
    expect(a.env.find((e: { name: string }) => e.name === 'SPAWNGATE_BIND').value).toBe('0.0.0.0');
    expect(a.readinessProbe.httpGet.path).toBe('/readyz');
    expect(a.livenessProbe.httpGet.path).toBe('/healthz');
    // Workers: worker.metricsPort (8091 by default; null in "everything optional off") gives the
    // container its env, a port named metrics and probes on it with the API's timings; null, none of it.
    const workerEnv = (w.env as { name: string; value?: string }[]).find((e) => e.name === 'SPAWNGATE_WORKER_METRICS_PORT');
    if (name === 'everything optional off') {
      expect([w.ports, workerEnv, w.livenessProbe, w.readinessProbe, w.startupProbe]).toEqual([undefined, undefined, undefined, undefined, undefined]);
    } else {
      expect(w.ports).toEqual([{ name: 'metrics', containerPort: 8091, protocol: 'TCP' }]);
      expect(workerEnv?.value).toBe('8091');
      expect(w.livenessProbe).toEqual({ ...a.livenessProbe, httpGet: { path: '/healthz', port: 'metrics' } });
      expect(w.readinessProbe).toEqual({ ...a.readinessProbe, httpGet: { path: '/readyz', port: 'metrics' } });
      expect(w.startupProbe).toEqual({ ...a.startupProbe, httpGet: { path: '/healthz', port: 'metrics' } });
    }
    expect(a.env.some((e: { name: string }) => e.name === 'SPAWNGATE_WORKER_METRICS_PORT')).toBe(false);
    for (const d of [api, worker]) {
      expect(d.spec.strategy.type).toBe('RollingUpdate');
      expect(selects(d.spec.selector, d.spec.template.metadata.labels)).toBe(true);
      const env = Object.fromEntries(d.spec.template.spec.containers[0].env.map((e: { name: string }) => [e.name, e]));
      for (const n of SECRET_ENV) expect(env[n]).toBeDefined();
      expect(env.SPAWNGATE_BACKEND.value).toBe('kubernetes');
    }
    const svc = docs().find((d) => d.kind === 'Service' && d.metadata.name === api.metadata.name.replace(/-api$/, ''))!;
    expect(selects({ matchLabels: svc.spec.selector }, api.spec.template.metadata.labels)).toBe(true);
    expect(selects({ matchLabels: svc.spec.selector }, worker.spec.template.metadata.labels)).toBe(false);
    // PDBs and HPA target what they should
    for (const pdb of byKind(docs(), 'PodDisruptionBudget')) {
      const target = pdb.metadata.name.endsWith('-api') ? api : worker;
      expect(selects(pdb.spec.selector, target.spec.template.metadata.labels)).toBe(true);
    }
    for (const hpa of byKind(docs(), 'HorizontalPodAutoscaler')) {
      expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: api.metadata.name });
      expect(api.spec.replicas).toBeUndefined();
    }
  });

  test('migrations run as a hook Job with `spawngate migrate`', () => {
    const jobs = byKind(docs(), 'Job');
    if (name === 'everything optional off') return expect(jobs).toEqual([]);
    expect(jobs).toHaveLength(1);
    const job = nth(jobs);
    expect(job.spec.template.spec.containers[0].args).toEqual(['migrate']);
    expect(job.metadata.annotations['helm.sh/hook']).toMatch(/pre-upgrade/);
    expect(job.spec.template.spec.automountServiceAccountToken).toBe(false);
    const trial = docs().some((d) => d.kind === 'StatefulSet' && d.metadata.name.endsWith('-postgresql'));
    expect(job.metadata.annotations['helm.sh/hook']).toBe(trial ? 'post-install,pre-upgrade' : 'pre-install,pre-upgrade');
    // a chart-made Secret must exist before a pre-install Job: it is a hook of lower weight
    for (const s of byKind(docs(), 'Secret')) {
      expect(Number(s.metadata.annotations['helm.sh/hook-weight'])).toBeLessThan(Number(job.metadata.annotations['helm.sh/hook-weight']));
      expect(s.metadata.annotations['helm.sh/hook']).toContain('pre-install');
    }
  });
});

describe('NetworkPolicies select the right pods', () => {
  const kernelPod = buildPod(
    { name: 'sg-kernel-x', kind: 'kernel', labels: {}, command: ['python'], env: {}, image: 'k:1' },
    { namespace: 'spawngate-workloads' },
  ).pod;
  const serverPod = buildPod(
    { name: 'sg-server-x', kind: 'server', labels: {}, command: ['jupyterhub-singleuser'], env: {}, image: 's:1' },
    { namespace: 'spawngate-workloads' },
  ).pod;
  const hubLabels = { app: 'jupyterhub', component: 'hub' };
  const proxyLabels = { app: 'jupyterhub', component: 'proxy' };

  /** Does any `from` peer of any rule admit a pod with these labels in this namespace? */
  function admits(rules: any[] | undefined, peerKey: 'from' | 'to', ns: string, labels: Record<string, string>, port?: number): boolean { // eslint-disable-line @typescript-eslint/no-explicit-any
    return (rules ?? []).some((rule) => {
      if (port !== undefined && rule.ports && !rule.ports.some((p: { port: number }) => p.port === port)) return false;
      const peers = rule[peerKey];
      if (!peers) return true; // no peers: everything
      return peers.some((p: any) => { // eslint-disable-line @typescript-eslint/no-explicit-any
        if (p.ipBlock) return false;
        const nsOk = p.namespaceSelector ? selects(p.namespaceSelector, { 'kubernetes.io/metadata.name': ns }) : ns === p.__policyNs;
        const podOk = p.podSelector ? selects(p.podSelector, labels) : true;
        return nsOk && podOk;
      });
    });
  }
  function withNs(policy: K8sObject) {
    const mark = (rules: any[] | undefined, key: string) => (rules ?? []).map((r) => ({ ...r, [key]: r[key]?.map((p: object) => ({ ...p, __policyNs: policy.metadata.namespace })) })); // eslint-disable-line @typescript-eslint/no-explicit-any
    return { ingress: mark(policy.spec.ingress, 'from'), egress: mark(policy.spec.egress, 'to') };
  }

  test.each(['eks', 'hpa + homes + several namespaces', 'defaults'])('%s', (name) => {
    const docs = rendered(name);
    const ns = docs.find((d) => d.kind === 'Deployment')!.metadata.namespace!;
    const workloadNs = [...new Set(byKind(docs, 'Role').map((r) => r.metadata.namespace!))];
    const hubNs = name === 'eks' ? 'jupyterhub' : name === 'defaults' ? ns : 'jhub';
    const api = one(docs, 'Deployment', '-api');
    const worker = one(docs, 'Deployment', '-worker');
    const apiLabels = api.spec.template.metadata.labels;
    const workerLabels = worker.spec.template.metadata.labels;
    const port = Number(api.spec.template.spec.containers[0].ports[0].containerPort);
    const policies = byKind(docs, 'NetworkPolicy');
    const selecting = (labels: Record<string, string>, inNs: string) =>
      policies.filter((p) => p.metadata.namespace === inNs && selects(p.spec.podSelector, labels));

    // API: hub and single-user servers in, on the API port; kernels and strangers not.
    const apiPol = selecting(apiLabels, ns);
    expect(apiPol).toHaveLength(1);
    const apiIn = withNs(nth(apiPol)).ingress;
    expect(admits(apiIn, 'from', hubNs, hubLabels, port)).toBe(true);
    for (const wns of workloadNs) {
      expect(admits(apiIn, 'from', wns, serverPod.metadata!.labels!, port)).toBe(true);
      expect(admits(apiIn, 'from', wns, kernelPod.metadata!.labels!, port)).toBe(false);
    }
    expect(admits(apiIn, 'from', 'elsewhere', { app: 'x' }, port)).toBe(false);
    expect(admits(apiIn, 'from', hubNs, hubLabels, 5432)).toBe(false);

    // Workers: nothing in.
    const wPol = selecting(workerLabels, ns);
    expect(wPol).toHaveLength(1);
    expect(nth(wPol).spec.policyTypes).toContain('Ingress');
    expect(nth(wPol).spec.ingress ?? []).toEqual([]);

    for (const wns of workloadNs) {
      // Kernels: only spawngate's API and workers in; out only DNS (no extraEgress configured).
      const kPol = selecting(kernelPod.metadata!.labels!, wns);
      expect(kPol).toHaveLength(1);
      expect(nth(kPol).spec.policyTypes).toEqual(['Ingress', 'Egress']);
      const k = withNs(nth(kPol));
      expect(admits(k.ingress, 'from', ns, apiLabels)).toBe(true);
      expect(admits(k.ingress, 'from', ns, workerLabels)).toBe(true);
      expect(admits(k.ingress, 'from', hubNs, hubLabels)).toBe(false);
      expect(admits(k.ingress, 'from', wns, serverPod.metadata!.labels!)).toBe(false);
      expect(admits(k.ingress, 'from', wns, kernelPod.metadata!.labels!)).toBe(false);
      for (const rule of nth(kPol).spec.egress) {
        expect(rule.to).toBeUndefined();
        expect(rule.ports.map((p: { port: number }) => p.port)).toEqual([53, 53]);
      }
      // Servers: in from hub and proxy only; not a kernel policy.
      const sPol = selecting(serverPod.metadata!.labels!, wns);
      expect(sPol).toHaveLength(1);
      const s = withNs(nth(sPol));
      expect(admits(s.ingress, 'from', hubNs, proxyLabels, 8888)).toBe(true);
      expect(admits(s.ingress, 'from', wns, kernelPod.metadata!.labels!, 8888)).toBe(false);
      expect(admits(s.egress, 'to', ns, apiLabels, port)).toBe(true);
      expect(admits(s.egress, 'to', ns, workerLabels, port)).toBe(false);
    }
    // Spawngate's own pods are not caught by the workload policies (their names differ from kernels').
    expect(selects(policies.find((p) => p.metadata.name.endsWith('-kernels'))!.spec.podSelector, apiLabels)).toBe(false);

    // Trial databases: only spawngate's pods.
    for (const db of byKind(docs, 'StatefulSet')) {
      const pol = selecting(db.spec.template.metadata.labels, ns);
      expect(pol).toHaveLength(1);
      const i = withNs(nth(pol)).ingress;
      expect(admits(i, 'from', ns, apiLabels)).toBe(true);
      expect(admits(i, 'from', ns, workerLabels)).toBe(true);
      expect(admits(i, 'from', ns, hubLabels)).toBe(false);
      expect(admits(i, 'from', ns, kernelPod.metadata!.labels!)).toBe(false);
    }
  });

  test('kernel egress can be opened by values', () => {
    const docs = render({
      values: [{ networkPolicy: { kernels: { extraEgress: [{ to: [{ ipBlock: { cidr: '10.1.0.0/16' } }], ports: [{ port: 443, protocol: 'TCP' }] }] } } }],
    });
    const k = docs.find((d) => d.kind === 'NetworkPolicy' && d.metadata.name.endsWith('-kernels'))!;
    expect(k.spec.egress.some((r: { to?: { ipBlock?: { cidr: string } }[] }) => r.to?.[0]?.ipBlock?.cidr === '10.1.0.0/16')).toBe(true);
  });

  test('EG launchers: kernels may reach the workers (and the workers take it) only when enabled, on unprivileged TCP ports', () => {
    const docs = render({ values: [{ networkPolicy: { kernels: { egLaunchers: true } } }] });
    const ns = docs.find((d) => d.kind === 'Deployment')!.metadata.namespace!;
    const workerLabels = one(docs, 'Deployment', '-worker').spec.template.metadata.labels;
    const apiLabels = one(docs, 'Deployment', '-api').spec.template.metadata.labels;
    const kernelLabels = kernelPod.metadata!.labels!;
    const range = [{ port: 1024, endPort: 65535, protocol: 'TCP' }];
    const workerPol = withNs(docs.find((d) => d.kind === 'NetworkPolicy' && d.metadata.name.endsWith('-worker'))!);
    expect(workerPol.ingress).toHaveLength(1);
    expect(workerPol.ingress[0].ports).toEqual(range);
    expect(admits(workerPol.ingress, 'from', ns, kernelLabels)).toBe(true);
    expect(admits(workerPol.ingress, 'from', ns, serverPod.metadata!.labels!)).toBe(false);
    expect(admits(workerPol.ingress, 'from', 'elsewhere', kernelLabels)).toBe(false);
    const kernelPol = docs.find((d) => d.kind === 'NetworkPolicy' && d.metadata.name.endsWith('-kernels'))!;
    const toWorkers = withNs(kernelPol).egress.filter((r) => r.to);
    expect(toWorkers).toHaveLength(1);
    expect(toWorkers[0].ports).toEqual(range);
    expect(admits(toWorkers, 'to', ns, workerLabels)).toBe(true);
    expect(admits(toWorkers, 'to', ns, apiLabels)).toBe(false);
    expect(admits(toWorkers, 'to', ns, kernelLabels)).toBe(false);
    for (const d of docs.filter((x) => x.kind === 'NetworkPolicy')) expect(() => model(d).validate()).not.toThrow();
  });

  test('workerExtraIngress: its rules (e.g. Prometheus on the metrics port) reach the worker policy only, after the EG-launcher rule', () => {
    const prometheus = { 'app.kubernetes.io/name': 'prometheus' };
    const rule = {
      from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } }, podSelector: { matchLabels: prometheus } }],
      ports: [{ port: 8091, protocol: 'TCP' }],
    };
    const policy = (docs: K8sObject[], suffix: string) => one(docs, 'NetworkPolicy', suffix);

    const docs = render({ values: [{ networkPolicy: { workerExtraIngress: [rule] } }] });
    const metricsPort = one(docs, 'Deployment', '-worker').spec.template.spec.containers[0].ports[0].containerPort;
    const workerIn = withNs(policy(docs, '-worker')).ingress;
    expect(policy(docs, '-worker').spec.ingress).toEqual([rule]);
    expect(admits(workerIn, 'from', 'monitoring', prometheus, metricsPort)).toBe(true);
    expect(admits(workerIn, 'from', 'monitoring', { app: 'other' }, metricsPort)).toBe(false);
    expect(admits(workerIn, 'from', 'elsewhere', prometheus, metricsPort)).toBe(false);
    expect(admits(workerIn, 'from', 'monitoring', prometheus, 8090)).toBe(false);
    expect(admits(workerIn, 'from', 'spawngate', kernelPod.metadata!.labels!, metricsPort)).toBe(false);
    // the API's policy is untouched (Prometheus reaches it through apiExtraIngress only)
    expect(policy(docs, '-api').spec).toEqual(policy(rendered('defaults'), '-api').spec);

    // with EG launchers: their rule first, unchanged, then the extra rules
    const both = render({ values: [{ networkPolicy: { workerExtraIngress: [rule], kernels: { egLaunchers: true } } }] });
    const ingress = policy(both, '-worker').spec.ingress;
    expect(ingress).toHaveLength(2);
    expect(ingress[0].ports).toEqual([{ port: 1024, endPort: 65535, protocol: 'TCP' }]);
    expect(ingress[1]).toEqual(rule);
    for (const d of [...docs, ...both].filter((x) => x.kind === 'NetworkPolicy')) expect(() => model(d).validate()).not.toThrow();
  });
});

describe('worker metrics endpoint (worker.metricsPort) and its PodMonitor', () => {
  const worker = (docs: K8sObject[]) => one(docs, 'Deployment', '-worker');
  const container = (docs: K8sObject[]) => worker(docs).spec.template.spec.containers[0];
  const kernelLabels = buildPod(
    { name: 'sg-kernel-x', kind: 'kernel', labels: {}, command: ['python'], env: {}, image: 'k:1' },
    { namespace: 'spawngate', instance: 'sg' },
  ).pod.metadata!.labels!;

  test('null: the worker Deployment is the default one without the port, the env and the probes', () => {
    const on = worker(rendered('defaults'));
    const off = worker(render({ values: [{ worker: { metricsPort: null } }] }));
    const expected = structuredClone(on);
    const c = expected.spec.template.spec.containers[0];
    delete c.ports;
    delete c.startupProbe;
    delete c.livenessProbe;
    delete c.readinessProbe;
    c.env = c.env.filter((e: { name: string }) => e.name !== 'SPAWNGATE_WORKER_METRICS_PORT');
    expect(c.env.length).toBe(on.spec.template.spec.containers[0].env.length - 1);
    expect(off).toEqual(expected);
  });

  test('another port reaches the env and the container port; the probes follow it by name', () => {
    const c = container(render({ values: [{ worker: { metricsPort: 9102 } }] }));
    expect(c.ports).toEqual([{ name: 'metrics', containerPort: 9102, protocol: 'TCP' }]);
    expect(c.env.find((e: { name: string }) => e.name === 'SPAWNGATE_WORKER_METRICS_PORT').value).toBe('9102');
    expect([c.startupProbe.httpGet, c.livenessProbe.httpGet, c.readinessProbe.httpGet]).toEqual([
      { path: '/healthz', port: 'metrics' },
      { path: '/healthz', port: 'metrics' },
      { path: '/readyz', port: 'metrics' },
    ]);
  });

  test('metrics.serviceMonitor.enabled adds a valid PodMonitor that selects the worker pods (not the API, not kernels) on port metrics', async () => {
    const docs = render({ values: [{ metrics: { serviceMonitor: { enabled: true, interval: '15s', scrapeTimeout: '5s', labels: { release: 'kps' } } } }] });
    const pms = byKind(docs, 'PodMonitor');
    expect(pms).toHaveLength(1);
    const pm = nth(pms);
    const { PodMonitor } = (await importEsm('@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1')) as { PodMonitor: new (o: unknown) => { validate(): void } };
    new PodMonitor(pm).validate();
    const w = worker(docs);
    const api = one(docs, 'Deployment', '-api');
    expect(pm.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(pm.metadata.namespace).toBe(w.metadata.namespace);
    expect(pm.metadata.labels!.release).toBe('kps');
    expect(pm.spec.namespaceSelector).toEqual({ matchNames: [w.metadata.namespace] });
    expect(selects(pm.spec.selector, w.spec.template.metadata.labels)).toBe(true);
    expect(selects(pm.spec.selector, api.spec.template.metadata.labels)).toBe(false);
    expect(selects(pm.spec.selector, kernelLabels)).toBe(false);
    for (const job of byKind(docs, 'Job')) expect(selects(pm.spec.selector, job.spec.template.metadata.labels)).toBe(false);
    // same interval and timeout as the ServiceMonitor; the port is the worker container's named port
    const sm = nth(byKind(docs, 'ServiceMonitor'));
    expect(pm.spec.podMetricsEndpoints).toEqual([{ port: 'metrics', path: '/metrics', interval: '15s', scrapeTimeout: '5s' }]);
    expect(sm.spec.endpoints[0]).toMatchObject({ interval: '15s', scrapeTimeout: '5s' });
    expect(sm.metadata.labels!.release).toBe('kps');
    expect(w.spec.template.spec.containers[0].ports.map((p: { name: string }) => p.name)).toContain('metrics');
  });

  test('no PodMonitor by default, nor with worker.metricsPort null (the ServiceMonitor stays)', () => {
    for (const name of Object.keys(scenarios)) expect([name, byKind(rendered(name), 'PodMonitor')]).toEqual([name, []]);
    const off = render({ values: [{ metrics: { serviceMonitor: { enabled: true } }, worker: { metricsPort: null } }] });
    expect(byKind(off, 'PodMonitor')).toEqual([]);
    expect(byKind(off, 'ServiceMonitor')).toHaveLength(1);
  });
});

describe('values and secrets', () => {
  test('given secrets land in the Secret only; the EKS example makes no Secret of its own', () => {
    const docs = rendered('external');
    const secrets = byKind(docs, 'Secret');
    expect(secrets).toHaveLength(1);
    const data = Object.fromEntries(Object.entries(nth(secrets).data as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));
    expect(data).toEqual({ 'hub-token': HUB_TOKEN, 'admin-token': ADMIN_TOKEN, 'secret-key': SECRET_KEY, 'database-url': DB_URL, 'redis-url': REDIS_URL });
    expect(byKind(rendered('eks'), 'Secret')).toEqual([]);
    const api = one(rendered('eks'), 'Deployment', '-api');
    for (const e of api.spec.template.spec.containers[0].env.filter((x: { name: string }) => SECRET_ENV.includes(x.name))) {
      expect(e.valueFrom.secretKeyRef.name).toBe('spawngate-secrets');
    }
  });

  test('OIDC introspection: the client secret lands in the Secret and reaches the service by reference only', () => {
    const docs = rendered('oidc with introspection');
    const data = nth(byKind(docs, 'Secret')).data as Record<string, string>;
    expect(Buffer.from(data['oidc-client-secret']!, 'base64').toString()).toBe('oidc-client-secret-value');
    const env = one(docs, 'Deployment', '-api').spec.template.spec.containers[0].env as { name: string; value?: string; valueFrom?: { secretKeyRef: { key: string } } }[];
    const ref = env.find((e) => e.name === 'SPAWNGATE_OIDC_CLIENT_SECRET')!;
    expect([ref.value, ref.valueFrom?.secretKeyRef.key]).toEqual([undefined, 'oidc-client-secret']);
    expect(JSON.stringify(byKind(docs, 'ConfigMap'))).not.toContain('oidc-client-secret-value');
    expect(rendered('eks').some((d) => JSON.stringify(d).includes('SPAWNGATE_OIDC_CLIENT_SECRET'))).toBe(false);
    const missing = renderRaw({ values: [external, { config: { oidc: { issuer: 'https://idp.example.org', audience: 'x', introspection: true, client_id: 'c' } } }] });
    expect(missing.status).not.toBe(0);
    expect(missing.stderr + missing.stdout).toMatch(/secrets\.oidcClientSecret/);
  });

  test('trial mode generates credentials that fit the config schema and wires the URLs to the trial services', () => {
    const s = nth(byKind(rendered('defaults'), 'Secret'));
    const data: Record<string, string> = Object.fromEntries(Object.entries(s.data as Record<string, string>).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));
    expect(data['hub-token']?.length).toBeGreaterThanOrEqual(16);
    expect(data['secret-key']).toMatch(/^[A-Za-z0-9+/=_-]{43,}$/);
    expect(data['database-url']).toBe(`postgres://spawngate:${data['postgres-password']}@sg-spawngate-postgresql:5432/spawngate`);
    expect(data['redis-url']).toBe(`redis://:${data['redis-password']}@sg-spawngate-redis:6379/0`);
    for (const st of byKind(rendered('defaults'), 'StatefulSet')) {
      expect(st.spec.replicas).toBe(1);
      expect(st.metadata.annotations['spawngate.io/not-for-production']).toBeTruthy();
    }
  });

  test('the ConfigMap carries the profiles and kernels of the values', () => {
    const cm = nth(byKind(rendered('eks'), 'ConfigMap'));
    const cfg = YAML.parse(cm.data['spawngate.yaml']);
    const values = YAML.parse(readFileSync(EKS, 'utf8'));
    // kubernetes.instance is the release name unless the values set one
    expect(cfg).toEqual({ ...values.config, kubernetes: { ...values.config.kubernetes, instance: scenarios.eks?.name ?? 'sg' } });
    const api = one(rendered('eks'), 'Deployment', '-api');
    const mount = api.spec.template.spec.containers[0].volumeMounts.find((m: { name: string }) => m.name === 'config');
    const env = api.spec.template.spec.containers[0].env.find((e: { name: string }) => e.name === 'SPAWNGATE_CONFIG');
    expect(path.dirname(env.value)).toBe(mount.mountPath);
    const homes = api.spec.template.spec.volumes.find((v: { name: string }) => v.name === 'homes');
    expect(homes.persistentVolumeClaim).toEqual({ claimName: 'homes', readOnly: true });
  });

  test('kubernetes.instance: the release name by default, the values\' own when set, absent off kubernetes', () => {
    const cfgOf = (docs: K8sObject[]) => YAML.parse(nth(byKind(docs, 'ConfigMap')).data['spawngate.yaml']);
    expect(cfgOf(render({ name: 'team-a' })).kubernetes).toEqual({ instance: 'team-a' });
    expect(cfgOf(render({ name: 'team-b', values: [{ config: { kubernetes: { instance: 'shared', fail_unschedulable: false } } }] })).kubernetes).toEqual({
      instance: 'shared',
      fail_unschedulable: false,
    });
    expect(cfgOf(render({ values: [{ backend: 'docker' }] })).kubernetes).toBeUndefined();
  });

  test('the trial databases\' claims take a storageClassName, and none by default (the cluster default)', () => {
    const claims = (docs: K8sObject[]) => byKind(docs, 'StatefulSet').map((st) => st.spec.volumeClaimTemplates[0].spec);
    for (const c of claims(rendered('defaults'))) expect(c.storageClassName).toBeUndefined();
    const gp3 = render({ values: [{ postgresql: { storage: { storageClassName: 'gp3' } }, redis: { storage: { storageClassName: 'gp3' } } }] });
    expect(claims(gp3).map((c) => c.storageClassName)).toEqual(['gp3', 'gp3']);
  });

  test('combinations the schema cannot express fail the render with a message', () => {
    const noDb = renderRaw({ values: [{ postgresql: { enabled: false } }] });
    expect(noDb.status).not.toBe(0);
    expect(noDb.stderr + noDb.stdout).toMatch(/secrets\.databaseUrl/);
    const noClaim = renderRaw({ values: [{ homes: { enabled: true } }] });
    expect(noClaim.status).not.toBe(0);
    expect(noClaim.stderr + noClaim.stdout).toMatch(/homes\.existingClaim/);
  });

  test('NOTES.txt renders and warns about trial mode', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sg-chart-'));
    const chart = path.join(dir, 'spawngate');
    cpSync(CHART, chart, { recursive: true });
    renameSync(path.join(chart, 'templates/NOTES.txt'), path.join(chart, 'templates/notes-as-template.txt'));
    const trial = renderRaw({ chart });
    expect(trial.status).toBe(0);
    expect(trial.stdout).toMatch(/TRIAL MODE — NOT FOR PRODUCTION/);
    expect(trial.stdout).toMatch(/spawner_class = "spawngate"/);
    expect(trial.stdout).toMatch(/Workers: the same three paths on port 8091/);
    expect(trial.stdout).toMatch(/networkPolicy\.workerExtraIngress/);
    const noWorkerHttp = renderRaw({ chart, values: [{ worker: { metricsPort: null } }] });
    expect(noWorkerHttp.status).toBe(0);
    expect(noWorkerHttp.stdout).not.toMatch(/Workers: the same three paths/);
    const prod = renderRaw({ chart, files: [EKS] });
    expect(prod.status).toBe(0);
    expect(prod.stdout).not.toMatch(/TRIAL MODE/);
  });
});

describe('the service accepts what the chart gives it', () => {
  test.each(
    ['eks', 'defaults', 'hpa + homes + several namespaces', 'oidc with introspection'].flatMap((name) => [
      [name, '-api'],
      [name, '-worker'],
    ]),
  )('%s, %s Deployment: env + SPAWNGATE_CONFIG pass the service\'s own validation', (name, deployment) => {
    const docs = rendered(name);
    const c = one(docs, 'Deployment', deployment).spec.template.spec.containers[0];
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sg-svc-'));
    const cm = nth(byKind(docs, 'ConfigMap'));
    const configFile = path.join(dir, 'spawngate.yaml');
    writeFileSync(configFile, cm.data['spawngate.yaml']);
    // plain values as rendered; secret refs get well-formed stand-ins (database/redis: embedded, so migrate runs here)
    const stand: Record<string, string> = {
      SPAWNGATE_HUB_TOKEN: HUB_TOKEN,
      SPAWNGATE_ADMIN_TOKEN: ADMIN_TOKEN,
      SPAWNGATE_SECRET_KEY: SECRET_KEY,
      SPAWNGATE_OIDC_CLIENT_SECRET: 'oidc-client-secret-value',
    };
    const env: Record<string, string> = { PATH: process.env.PATH ?? '' };
    for (const e of c.env as { name: string; value?: string }[]) {
      if (e.value !== undefined) env[e.name] = e.value;
      else if (stand[e.name]) env[e.name] = stand[e.name]!;
    }
    expect(env.SPAWNGATE_CONFIG).toBe('/etc/spawngate/spawngate.yaml');
    env.SPAWNGATE_CONFIG = configFile;
    env.SPAWNGATE_DATA_DIR = dir;
    const r = spawnSync('node', ['bin/spawngate.js', 'migrate'], { cwd: REPO, env, encoding: 'utf8' });
    expect([r.status, r.stderr]).toEqual([0, '']);
  });
});

describe('values.schema.json', () => {
  const schema = JSON.parse(readFileSync(path.join(CHART, 'values.schema.json'), 'utf8'));
  const ajv = new Ajv({ allErrors: true });
  const validate = ajv.compile(schema);
  const defaults = YAML.parse(readFileSync(path.join(CHART, 'values.yaml'), 'utf8'));
  const check = (over: object) => {
    const ok = validate(mergeValues(defaults, over));
    return { ok, errors: ajv.errorsText(validate.errors) };
  };

  test('its `config` is the service\'s own configuration schema (regenerate with npm run config-doc)', () => {
    const { description: _d, ...embedded } = schema.properties.config;
    expect(embedded).toEqual(fileConfigJsonSchema());
  });

  test('worker.metricsPort: an integer port, or null (the endpoint off)', () => {
    expect(check({ worker: { metricsPort: 9102 } })).toEqual({ ok: true, errors: 'No errors' });
    const off = structuredClone(defaults);
    off.worker.metricsPort = null; // mergeValues (as Helm) would delete the key: check the null itself
    expect(validate(off)).toBe(true);
    expect(check({ networkPolicy: { workerExtraIngress: [{ from: [{ namespaceSelector: {} }] }] } }).ok).toBe(true);
  });

  test('accepts the defaults, the EKS example and the test scenarios', () => {
    expect(check({})).toEqual({ ok: true, errors: 'No errors' });
    expect(check(YAML.parse(readFileSync(EKS, 'utf8')))).toEqual({ ok: true, errors: 'No errors' });
    for (const o of Object.values(scenarios)) for (const v of o?.values ?? []) expect(check(v).ok).toBe(true);
  });

  test.each([
    ['unknown top-level key', { replicas: 3 }, /additional properties/],
    ['misspelt nested key', { api: { replica: 3 } }, /additional properties/],
    ['unknown backend', { backend: 'aws' }, /allowed values/],
    ['port not a number', { service: { port: 'http' } }, /should be integer/],
    ['port out of range', { service: { port: 70000 } }, /<= 65535/],
    ['worker metrics port out of range', { worker: { metricsPort: 70000 } }, /metricsPort should be <= 65535/],
    ['worker metrics port zero', { worker: { metricsPort: 0 } }, /metricsPort should be >= 1/],
    ['worker metrics port a name', { worker: { metricsPort: 'metrics' } }, /metricsPort should be integer,null/],
    ['worker metrics port fractional', { worker: { metricsPort: 8091.5 } }, /metricsPort should be integer,null/],
    ['worker extra ingress not a list', { networkPolicy: { workerExtraIngress: { from: [] } } }, /workerExtraIngress should be array/],
    ['root allowed', { containerSecurityContext: { runAsNonRoot: false } }, /equal to constant/],
    ['writable root filesystem', { containerSecurityContext: { readOnlyRootFilesystem: false } }, /equal to constant/],
    ['pod may run as root', { podSecurityContext: { runAsNonRoot: false } }, /equal to constant/],
    ['resources without limits', { api: { resources: { limits: null } } }, /limits/],
    ['bad quantity', { worker: { resources: { limits: { cpu: 'two' } } } }, /pattern|oneOf/],
    ['short hub token', { secrets: { hubToken: 'short' } }, /secrets\.hubToken|hubToken/],
    ['non-postgres database URL', { secrets: { databaseUrl: 'mysql://x' } }, /databaseUrl/],
    ['bad secret key', { secrets: { secretKey: 'abc' } }, /secretKey/],
    ['secret as plain env', { extraEnv: { SPAWNGATE_HUB_TOKEN: 'x'.repeat(20) } }, /property name/],
    ['OIDC client secret as plain env', { extraEnv: { SPAWNGATE_OIDC_CLIENT_SECRET: 'x' } }, /property name/],
    ['bad namespace', { workloads: { namespaces: ['Bad_NS'] } }, /pattern/],
    ['log level', { logLevel: 'verbose' }, /allowed values/],
    ['profile without slug', { config: { profiles: [{ display_name: 'x' }] } }, /slug/],
    ['misspelt kernels setting', { config: { kernels: { cull_idle_timout: 60 } } }, /additional properties/],
    ['kernel port range reversed into one value', { config: { kernels: { port_range: [30000] } } }, /fewer than 2 items|minItems/],
    ['negative kernel limit', { config: { kernels: { max_kernels_per_user: -1 } } }, /> 0|minimum|exclusiveMinimum/],
    ['home claim not a DNS name', { config: { kubernetes: { home_volume: { claim_name: 'Homes_EFS' } } } }, /pattern/],
    ['unknown config section', { config: { kubernetess: {} } }, /additional properties/],
  ])('rejects %s', (_label, over, message) => {
    const r = check(over);
    expect(r.ok).toBe(false);
    expect(r.errors).toMatch(message);
  });
});

describe('examples', () => {
  test('efs-homes.yaml: valid StorageClass, PVs and PVCs for both namespaces, one EFS directory', () => {
    const docs = parseDocs(readFileSync(path.join(CHART, 'examples/efs-homes.yaml'), 'utf8'));
    for (const d of docs) model(d).validate();
    expect(docs.map((d) => d.kind).sort()).toEqual(['PersistentVolume', 'PersistentVolume', 'PersistentVolumeClaim', 'PersistentVolumeClaim', 'StorageClass']);
    const handles = new Set(byKind(docs, 'PersistentVolume').map((p) => p.spec.csi.volumeHandle));
    expect(handles.size).toBe(1);
    const eks = YAML.parse(readFileSync(EKS, 'utf8'));
    const claims = byKind(docs, 'PersistentVolumeClaim');
    expect(claims.some((c) => c.metadata.name === eks.homes.existingClaim && c.metadata.namespace === 'spawngate')).toBe(true);
    for (const ns of eks.workloads.namespaces) expect(claims.some((c) => c.metadata.namespace === ns)).toBe(true);
    for (const c of claims) expect(c.spec.accessModes).toEqual(['ReadWriteMany']);
  });

  test('z2jh-values.yaml: spawner "spawngate", URL of the rendered Service, token from a Secret, no hub RBAC', () => {
    const v = YAML.parse(readFileSync(path.join(CHART, 'examples/z2jh-values.yaml'), 'utf8'));
    expect(v.hub.config.JupyterHub.spawner_class).toBe('spawngate');
    expect(v.rbac.create).toBe(false);
    expect(v.hub.serviceAccount.create).toBe(false);
    expect(v.hub.extraEnv.SPAWNGATE_HUB_TOKEN.valueFrom.secretKeyRef.name).toBeTruthy();
    expect(JSON.stringify(v)).not.toMatch(/service_token/);
    const svc = byKind(rendered('eks'), 'Service').find((s) => !/postgresql|redis/.test(s.metadata.name))!;
    expect(v.hub.config.RemoteSpawner.service_url).toBe(`http://${svc.metadata.name}.${svc.metadata.namespace}.svc:${svc.spec.ports[0].port}`);
  });
});
