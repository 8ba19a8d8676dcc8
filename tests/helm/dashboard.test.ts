/**
 * The chart's Grafana dashboard and ServiceMonitor: both off by default, each turned on by one value;
 * the ConfigMap carries the sidecar's label and the dashboard file verbatim; the ServiceMonitor is
 * valid for the Prometheus Operator and selects the API pods' named port. The dashboard JSON is checked
 * against Grafana's own dashboard schema (the `Dashboard` type @grafana/schema publishes, generated from
 * Grafana's schema sources, turned into a JSON Schema here) and every PromQL query in it parses and
 * names only metrics spawngate registers.
 */
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Ajv from 'ajv';
import { parser as promqlParser } from '@prometheus-io/lezer-promql';
import { createGenerator } from 'ts-json-schema-generator';
import YAML from 'yaml';
import { createMetrics, registerUsageMetrics } from '../../src/metrics';
import { CHART, chartRenderBinary, defaultRenderer, mergeValues, render, REPO, type K8sObject } from './chart-render';

jest.setTimeout(600_000);

const DASHBOARD_FILE = path.join(CHART, 'dashboards/spawngate-usage.json');
const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8'));
const importEsm = eval('(specifier) => import(specifier)') as (specifier: string) => Promise<unknown>;

beforeAll(() => {
  if (defaultRenderer() === 'chart-render') chartRenderBinary();
});

const kinds = (docs: K8sObject[], kind: string) => docs.filter((d) => d.kind === kind);

describe('chart', () => {
  test('defaults create neither a ServiceMonitor nor a dashboard ConfigMap', () => {
    const docs = render();
    expect(kinds(docs, 'ServiceMonitor')).toEqual([]);
    expect(kinds(docs, 'ConfigMap').filter((c) => c.metadata.labels?.grafana_dashboard !== undefined)).toEqual([]);
  });

  test('metrics.dashboard.enabled alone creates a ConfigMap the Grafana sidecar loads, holding the dashboard file verbatim', async () => {
    const docs = render({ values: [{ metrics: { dashboard: { enabled: true } } }] });
    const [cm, ...more] = kinds(docs, 'ConfigMap').filter((c) => c.metadata.name.endsWith('-dashboard'));
    expect(more).toEqual([]);
    expect(cm!.metadata.labels!.grafana_dashboard).toBe('1');
    expect(cm!.metadata.namespace).toBe('spawngate');
    expect(cm!.metadata.annotations).toBeUndefined();
    expect(cm!.data['spawngate-usage.json']).toBe(readFileSync(DASHBOARD_FILE, 'utf8').trimEnd());
    const { ConfigMap } = require('kubernetes-models/v1/ConfigMap'); // eslint-disable-line @typescript-eslint/no-require-imports
    new ConfigMap(cm).validate();
    expect(kinds(docs, 'ServiceMonitor')).toEqual([]);

    const placed = render({ values: [{ metrics: { dashboard: { enabled: true, namespace: 'monitoring', label: 'dashboards', labelValue: 'spawngate', folder: 'Jupyter' } } }] });
    const moved = kinds(placed, 'ConfigMap').find((c) => c.metadata.name.endsWith('-dashboard'))!;
    expect(moved.metadata.namespace).toBe('monitoring');
    expect(moved.metadata.labels!.dashboards).toBe('spawngate');
    expect(moved.metadata.annotations).toEqual({ grafana_folder: 'Jupyter' });
  });

  test('metrics.serviceMonitor.enabled creates a valid ServiceMonitor that selects the API pods and their named port', async () => {
    const docs = render({ values: [{ metrics: { serviceMonitor: { enabled: true, labels: { release: 'kps' } } } }] });
    const [sm, ...more] = kinds(docs, 'ServiceMonitor');
    expect(more).toEqual([]);
    const { ServiceMonitor } = (await importEsm('@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1')) as { ServiceMonitor: new (o: unknown) => { validate(): void } };
    new ServiceMonitor(sm).validate();
    expect(sm!.metadata.labels!.release).toBe('kps');
    expect(sm!.spec.endpoints).toEqual([{ port: 'http', path: '/metrics', interval: '30s', scrapeTimeout: '10s' }]);
    // It selects the Service in front of the API pods, through the Service's labels, on a port of that name.
    const service = kinds(docs, 'Service').find((s) => Object.entries(sm!.spec.selector.matchLabels).every(([k, v]) => s.metadata.labels?.[k] === v));
    expect(service).toBeDefined();
    expect(service!.spec.ports.map((p: { name: string }) => p.name)).toContain('http');
    expect(sm!.spec.namespaceSelector.matchNames).toEqual([service!.metadata.namespace]);
    const api = kinds(docs, 'Deployment').find((d) => d.metadata.name.endsWith('-api'))!;
    expect(Object.entries(service!.spec.selector).every(([k, v]) => api.spec.template.metadata.labels[k] === v)).toBe(true);
  });

  test('values.schema.json accepts the metrics block and refuses a misspelt key or a bad interval', () => {
    const schema = JSON.parse(readFileSync(path.join(CHART, 'values.schema.json'), 'utf8'));
    const ajv = new Ajv({ allErrors: true });
    const validate = ajv.compile(schema);
    const defaults = YAML.parse(readFileSync(path.join(CHART, 'values.yaml'), 'utf8'));
    expect(validate(mergeValues(defaults, { metrics: { serviceMonitor: { enabled: true, interval: '1m' }, dashboard: { enabled: true } } }))).toBe(true);
    expect(validate(mergeValues(defaults, { metrics: { dashbord: { enabled: true } } }))).toBe(false);
    expect(ajv.errorsText(validate.errors)).toMatch(/additional properties/);
    expect(validate(mergeValues(defaults, { metrics: { serviceMonitor: { interval: 'often' } } }))).toBe(false);
  });
});

test('.Files.Get reads chart files only: nothing outside the chart, no template source, "" when missing (as Helm)', () => {
  const chart = path.join(mkdtempSync(path.join(os.tmpdir(), 'sg-h16-files-')), 'spawngate');
  cpSync(CHART, chart, { recursive: true });
  writeFileSync(path.join(path.dirname(chart), 'outside.txt'), 'SECRET-OUTSIDE');
  writeFileSync(
    path.join(chart, 'templates', 'zz-files-probe.yaml'),
    `apiVersion: v1
kind: ConfigMap
metadata:
  name: files-probe
data:
  inside: {{ .Files.Get "dashboards/spawngate-usage.json" | len | quote }}
  outside: {{ .Files.Get "../outside.txt" | quote }}
  template: {{ .Files.Get "templates/service.yaml" | quote }}
  missing: {{ .Files.Get "no/such/file" | quote }}
`,
  );
  const probe = render({ chart }).find((d) => d.metadata.name === 'files-probe')!;
  expect(Number(probe.data.inside)).toBe(readFileSync(DASHBOARD_FILE).length);
  // Helm's documented rule: files under templates/ cannot be read through .Files.
  expect(probe.data).toEqual(expect.objectContaining({ outside: '', missing: '', template: '' }));
});

describe('dashboard JSON', () => {
  test("validates against Grafana's dashboard schema (@grafana/schema Dashboard, no unknown fields)", () => {
    const types = path.join(REPO, 'node_modules/@grafana/schema/dist/types/raw/dashboard/x/types.gen.d.ts');
    const schema = createGenerator({ path: types, type: 'Dashboard', skipTypeCheck: true, expose: 'all', topRef: true }).createSchema('Dashboard');
    const ajv = new Ajv({ allErrors: true });
    const validate = ajv.compile(schema);
    const ok = validate(dashboard);
    expect(ajv.errorsText(validate.errors)).toBe('No errors');
    expect(ok).toBe(true);
    // The check bites: a misspelt field is refused.
    expect(validate({ ...dashboard, panels: [{ ...dashboard.panels[1], gridpos: {} }] })).toBe(false);
  });

  test('has the panels the issue asks for, each with a Prometheus query on the chosen data source', () => {
    const titles = dashboard.panels.filter((p: { type: string }) => p.type !== 'row').map((p: { title: string }) => p.title);
    expect(titles).toEqual(expect.arrayContaining(['Live kernels per experiment', 'Servers per profile', 'CPU limit reserved vs quota', 'Launches refused by reason', 'Kernel start latency']));
    expect(new Set(dashboard.panels.map((p: { id: number }) => p.id)).size).toBe(dashboard.panels.length);
    for (const p of dashboard.panels.filter((x: { type: string }) => x.type !== 'row')) {
      expect(p.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(p.targets.length).toBeGreaterThan(0);
      for (const t of p.targets) expect(t).toEqual(expect.objectContaining({ refId: expect.any(String), expr: expect.any(String) }));
    }
  });

  test('every query parses as PromQL and names only metrics spawngate exports', () => {
    const metrics = createMetrics({ defaultMetrics: true });
    registerUsageMetrics(metrics.registry, { live: async () => [], quotas: async () => [] }, { perUser: true, maxKernelsPerExperiment: 1 });
    const exported = new Set<string>();
    for (const m of metrics.registry.getMetricsAsArray()) {
      const { name, type } = m as unknown as { name: string; type: string };
      exported.add(name);
      if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) exported.add(name + s);
      if (type === 'summary') for (const s of ['_sum', '_count']) exported.add(name + s);
    }
    const queries: string[] = [
      ...dashboard.panels.flatMap((p: { targets?: { expr: string }[] }) => (p.targets ?? []).map((t) => t.expr)),
      ...dashboard.templating.list.filter((v: { type: string }) => v.type === 'query').map((v: { query: { query: string } }) => v.query.query),
    ];
    expect(queries.length).toBeGreaterThan(10);
    const named = new Set<string>();
    for (const q of queries) {
      // Grafana's variables become what Grafana would put there before Prometheus sees the query.
      const expr = q.replaceAll('$__rate_interval', '5m').replaceAll('$experiment', '.*');
      // label_values(metric, label) is Grafana's, not PromQL: its metric is checked, the rest is not parsed.
      const lv = /^label_values\(([a-zA-Z_:][a-zA-Z0-9_:]*),\s*[a-zA-Z_][a-zA-Z0-9_]*\)$/.exec(expr);
      if (lv) {
        named.add(lv[1]!);
        continue;
      }
      const tree = promqlParser.parse(expr);
      const cursor = tree.cursor();
      const inQuery: string[] = [];
      do {
        expect(cursor.type.isError ? `parse error in: ${q}` : 'ok').toBe('ok');
        if (cursor.name === 'VectorSelector') {
          const id = cursor.node.getChild('Identifier');
          if (id) inQuery.push(expr.slice(id.from, id.to));
        }
      } while (cursor.next());
      expect(inQuery.length).toBeGreaterThan(0);
      inQuery.forEach((n) => named.add(n));
    }
    const unknown = [...named].filter((n) => !exported.has(n));
    expect(unknown).toEqual([]);
    // The check bites: a name spawngate does not export would be reported.
    expect(exported.has('spawngate_kernels_total')).toBe(false);
  });
});
