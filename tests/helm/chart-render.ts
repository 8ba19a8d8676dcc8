/**
 * Test helper: renders helm/spawngate and parses the output. The renderer is `helm template` when
 * helm is on PATH, otherwise the repository's own tools/chart-render (Go text/template + sprig, built
 * from Debian packages into a cache keyed by its source, so an edited renderer is rebuilt).
 * `SPAWNGATE_CHART_RENDERER=helm|chart-render` forces one; `CHART_RENDER=/path/to/binary` skips the build.
 */
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';

export const REPO = path.resolve(__dirname, '../..');
export const CHART = path.join(REPO, 'helm/spawngate');
const TOOL_DIR = path.join(REPO, 'tools/chart-render');

export interface K8sObject {
  apiVersion: string;
  kind: string;
  // annotations typed as present: a test reading a missing one fails with a TypeError, as it should
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations: Record<string, string> };
  [key: string]: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export type Renderer = 'helm' | 'chart-render';

/** Absolute path of `helm` on PATH, or undefined. */
export function helmBinary(): string | undefined {
  const r = spawnSync('sh', ['-c', 'command -v helm'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : undefined;
}

/** The renderer the chart tests use unless told otherwise. */
export function defaultRenderer(): Renderer {
  const forced = process.env.SPAWNGATE_CHART_RENDERER;
  if (forced === 'helm' || forced === 'chart-render') return forced;
  if (forced) throw new Error(`SPAWNGATE_CHART_RENDERER=${forced}: expected helm or chart-render`);
  return helmBinary() ? 'helm' : 'chart-render';
}

/** Path of the in-repo chart-render binary, building it (tools/chart-render/build.sh) if needed. */
export function chartRenderBinary(): string {
  if (process.env.CHART_RENDER) return process.env.CHART_RENDER;
  const hash = createHash('sha256');
  for (const f of readdirSync(TOOL_DIR).sort()) hash.update(f).update(readFileSync(path.join(TOOL_DIR, f)));
  const cacheDir = path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'spawngate-tests');
  const bin = path.join(cacheDir, `chart-render-${hash.digest('hex').slice(0, 16)}`);
  if (existsSync(bin)) return bin;
  mkdirSync(cacheDir, { recursive: true });
  const tmp = `${bin}.${process.pid}`;
  const r = spawnSync('bash', [path.join(TOOL_DIR, 'build.sh'), tmp], { encoding: 'utf8', timeout: 900_000 });
  if (r.status !== 0) throw new Error(`building tools/chart-render failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  renameSync(tmp, bin);
  return bin;
}

export interface RenderOptions {
  /** values objects, each written to a temp file and passed with -f, in order */
  values?: object[];
  /** values files passed with -f before `values` */
  files?: string[];
  name?: string;
  namespace?: string;
  chart?: string;
}

function valueArgs(o: RenderOptions): string[] {
  const a: string[] = [];
  for (const f of o.files ?? []) a.push('-f', f);
  if (o.values?.length) {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sg-values-'));
    o.values.forEach((v, i) => {
      const f = path.join(dir, `values-${i}.yaml`);
      writeFileSync(f, YAML.stringify(v));
      a.push('-f', f);
    });
  }
  return a;
}

/** Raw output and exit status (for expected failures), from the given renderer. */
export function renderRaw(o: RenderOptions = {}, renderer: Renderer = defaultRenderer()): { status: number; stdout: string; stderr: string } {
  const name = o.name ?? 'sg';
  const namespace = o.namespace ?? 'spawngate';
  const chart = o.chart ?? CHART;
  const r =
    renderer === 'helm'
      ? spawnSync(helmBinary() ?? 'helm', ['template', name, chart, '--namespace', namespace, ...valueArgs(o)], { encoding: 'utf8' })
      : spawnSync(chartRenderBinary(), [...valueArgs(o), '--name', name, '--namespace', namespace, chart], { encoding: 'utf8' });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Every rendered document, parsed; throws with the renderer's message on a render error. */
export function render(o: RenderOptions = {}, renderer: Renderer = defaultRenderer()): K8sObject[] {
  const r = renderRaw(o, renderer);
  if (r.status !== 0) throw new Error(`${renderer} failed (${r.status}): ${r.stderr}${r.stdout}`);
  return parseDocs(r.stdout);
}

export function parseDocs(text: string): K8sObject[] {
  const docs = YAML.parseAllDocuments(text);
  for (const d of docs) if (d.errors.length) throw new Error(`rendered YAML does not parse: ${d.errors.map((e) => e.message).join('; ')}`);
  return docs.map((d) => d.toJS() as K8sObject).filter((d) => d && typeof d === 'object');
}

/** Helm-style deep merge of values (maps merge, everything else replaces, null deletes). */
export function mergeValues(base: any, over: any): any { // eslint-disable-line @typescript-eslint/no-explicit-any
  if (over === undefined) return base;
  if (!isMap(base) || !isMap(over)) return structuredClone(over);
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === null) delete out[k];
    else out[k] = mergeValues(base[k], v);
  }
  return out;
}

function isMap(v: unknown): v is Record<string, any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Does a LabelSelector (matchLabels + matchExpressions) select these labels? */
export function selects(
  selector: { matchLabels?: Record<string, string>; matchExpressions?: { key: string; operator: string; values?: string[] }[] },
  labels: Record<string, string>,
): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    switch (e.operator) {
      case 'In':
        if (!has || !e.values?.includes(labels[e.key] ?? '')) return false;
        break;
      case 'NotIn':
        if (has && e.values?.includes(labels[e.key] ?? '')) return false;
        break;
      case 'Exists':
        if (!has) return false;
        break;
      case 'DoesNotExist':
        if (has) return false;
        break;
      default:
        throw new Error(`unknown selector operator ${e.operator}`);
    }
  }
  return true;
}

/** Element i of an array, or a thrown error naming what was expected (strict index access). */
export function nth<T>(items: readonly T[] | undefined, i = 0, what = 'element'): T {
  const v = items?.[i];
  if (v === undefined) throw new Error(`expected ${what} #${i}, have ${items?.length ?? 0}`);
  return v;
}
