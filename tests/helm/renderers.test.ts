/**
 * The chart renderers: tools/chart-render implements what Helm's engine adds to text/template+sprig
 * (checked on a small fixture chart, always), and where helm is installed both renderers produce the
 * same documents for every scenario of the chart tests.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chartRenderBinary, helmBinary, K8sObject, parseDocs, render, renderRaw } from './chart-render';
import { scenarios } from './scenarios';

jest.setTimeout(900_000);

function fixtureChart(templates: Record<string, string>, values = '', chartExtra = ''): string {
  const dir = path.join(mkdtempSync(path.join(os.tmpdir(), 'sg-fixture-')), 'fixture');
  mkdirSync(path.join(dir, 'templates'), { recursive: true });
  writeFileSync(path.join(dir, 'Chart.yaml'), `apiVersion: v2\nname: fixture\nversion: 1.2.3\nappVersion: "4.5"\n${chartExtra}`);
  writeFileSync(path.join(dir, 'values.yaml'), values);
  for (const [name, text] of Object.entries(templates)) writeFileSync(path.join(dir, 'templates', name), text);
  return dir;
}

describe('tools/chart-render (Helm engine semantics)', () => {
  const chart = fixtureChart(
    {
      '_helpers.tpl': '{{- define "fx.name" -}}{{ .Release.Name }}-{{ .Chart.Name }}{{- end }}\n{{- define "fx.labels" -}}\napp: {{ include "fx.name" . }}\nversion: {{ .Chart.AppVersion | quote }}\n{{- end }}\n',
      'cm.yaml': [
        'apiVersion: v1',
        'kind: ConfigMap',
        'metadata:',
        '  name: {{ include "fx.name" . }}',
        '  namespace: {{ .Release.Namespace }}',
        '  labels: {{- include "fx.labels" . | nindent 4 }}',
        'data:',
        '  template: {{ .Template.Name | quote }}',
        '  basePath: {{ .Template.BasePath | quote }}',
        '  service: {{ .Release.Service | quote }}',
        '  greeting: {{ tpl .Values.greeting . | quote }}',
        '  nested: |-',
        '    {{- toYaml .Values.nested | nindent 4 }}',
        '  json: {{ toJson .Values.nested | quote }}',
        '  parsed: {{ (fromYaml "a: 1\\nb: [x]").b | first | quote }}',
        '  parsedList: {{ (fromYamlArray "- p\\n- q") | last | quote }}',
        '  missing: "{{ .Values.absent }}"',
        '  lookup: {{ lookup "v1" "Secret" "ns" "x" | len | quote }}',
        '  hasNetpol: {{ .Capabilities.APIVersions.Has "networking.k8s.io/v1" | quote }}',
        '  kube: {{ .Capabilities.KubeVersion.Major | quote }}',
        '  number: {{ .Values.number | quote }}',
        '  set: {{ .Values.fromSet | quote }}',
        '  copy: {{ include "fixture/templates/other.yaml" . | sha256sum | trunc 8 | quote }}',
        '  req: {{ required "greeting is required" .Values.greeting | quote }}',
        '',
      ].join('\n'),
      'other.yaml': '{{- if .Values.other }}\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: one\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: two\n{{- end }}\n',
      'NOTES.txt': 'notes never reach the manifests\n',
    },
    'greeting: "hello {{ .Release.Name }}"\nnested: {b: 2, a: [1, two]}\nnumber: 5\nother: true\ndropped: {keep: 1, gone: 2}\n',
  );

  test('renders include, tpl, toYaml, toJson, fromYaml(Array), .Release/.Chart/.Template/.Capabilities, lookup empty', () => {
    const docs = render({ chart, name: 'rel', namespace: 'ns1', values: [{ nested: { c: true } }] }, 'chart-render');
    const cm = docs.find((d) => d.kind === 'ConfigMap') as K8sObject;
    expect(cm.metadata).toMatchObject({ name: 'rel-fixture', namespace: 'ns1', labels: { app: 'rel-fixture', version: '4.5' } });
    expect(cm.data).toMatchObject({
      template: 'fixture/templates/cm.yaml',
      basePath: 'fixture/templates',
      service: 'Helm',
      greeting: 'hello rel',
      nested: 'a:\n- 1\n- two\nb: 2\nc: true',
      json: '{"a":[1,"two"],"b":2,"c":true}',
      parsed: 'x',
      parsedList: 'q',
      missing: '',
      lookup: '0',
      hasNetpol: 'true',
      kube: '1',
      number: '5',
      req: 'hello {{ .Release.Name }}', // required passes the value through untouched
    });
    expect(cm.data.copy).toMatch(/^[0-9a-f]{8}$/);
  });

  test('one file may hold several documents; partials and NOTES.txt are not output', () => {
    const r = renderRaw({ chart }, 'chart-render');
    expect(r.status).toBe(0);
    expect(parseDocs(r.stdout).filter((d) => d.kind === 'Namespace').map((d) => d.metadata.name)).toEqual(['one', 'two']);
    expect(r.stdout).toContain('# Source: fixture/templates/other.yaml');
    expect(r.stdout).not.toMatch(/notes never reach|_helpers/);
  });

  test('-f files merge in order, null deletes a key, --set applies last', () => {
    const cm = (o: object[]) => render({ chart, values: o }, 'chart-render').find((d) => d.kind === 'ConfigMap') as K8sObject;
    expect(cm([{ nested: null }, { nested: { z: 1 } }]).data.nested).toBe('z: 1');
    expect(render({ chart, values: [{ other: false }] }, 'chart-render').some((d) => d.kind === 'Namespace')).toBe(false);
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sg-set-'));
    const f = path.join(dir, 'v.yaml');
    writeFileSync(f, 'fromSet: from-file\n');
    const out = spawnSync(chartRenderBinary(), ['-f', f, '--set', 'fromSet=from-set,number=7', chart], { encoding: 'utf8' });
    expect(out.status).toBe(0);
    const data = (parseDocs(out.stdout).find((d) => d.kind === 'ConfigMap') as K8sObject).data;
    expect(data).toMatchObject({ set: 'from-set', number: '7' });
  });

  test('required and fail stop the render with their message and the template', () => {
    const r = renderRaw({ chart, values: [{ greeting: '' }] }, 'chart-render');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/fixture\/templates\/cm\.yaml.*greeting is required/);
    const failing = fixtureChart({ 'x.yaml': '{{ fail "no way" }}' });
    expect(renderRaw({ chart: failing }, 'chart-render').stderr).toMatch(/no way/);
  });

  test("Chart.yaml's kubeVersion is checked against the reported Kubernetes version", () => {
    const old = fixtureChart({ 'x.yaml': 'a: b\n' }, '', 'kubeVersion: ">=9.0.0-0"\n');
    const r = renderRaw({ chart: old }, 'chart-render');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/requires kubeVersion: >=9\.0\.0-0/);
  });

  test('env and expandenv are not available (the renderer environment never reaches manifests)', () => {
    const leaky = fixtureChart({ 'x.yaml': 'home: {{ env "HOME" }}\n' });
    const r = renderRaw({ chart: leaky }, 'chart-render');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/function "env" not defined/);
  });
});

/** Random secrets differ between any two renders: compare their keys, not their values. */
function comparable(docs: K8sObject[]): Map<string, K8sObject> {
  const out = new Map<string, K8sObject>();
  for (const d of docs) {
    const copy = structuredClone(d);
    if (copy.kind === 'Secret' && copy.data) for (const k of Object.keys(copy.data)) copy.data[k] = '<value>';
    out.set(`${d.kind}/${d.metadata.namespace ?? ''}/${d.metadata.name}`, copy);
  }
  return out;
}

const helm = helmBinary();
const HELM_ABSENT = 'helm is not on PATH (it cannot be installed on this machine); install helm to compare the two renderers';
(helm ? describe : describe.skip)(`helm template and tools/chart-render agree${helm ? '' : ` — skipped: ${HELM_ABSENT}`}`, () => {
  test.each(Object.keys(scenarios))('%s: the same documents', (name) => {
    const o = scenarios[name] ?? {};
    const viaHelm = comparable(render(o, 'helm'));
    const viaRender = comparable(render(o, 'chart-render'));
    expect([...viaRender.keys()].sort()).toEqual([...viaHelm.keys()].sort());
    for (const [key, doc] of viaHelm) expect({ key, doc: viaRender.get(key) }).toEqual({ key, doc });
  });
});
if (!helm) console.warn(`\n*** renderer comparison SKIPPED: ${HELM_ABSENT} ***\n`);
