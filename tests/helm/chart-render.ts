/**
 * Test helper: renders helm/spawngate with chart-render (the shared tool that runs Helm's template
 * engine and function library without a helm binary) and parses the output.
 *
 * The binary is built once into a cache directory from ../shared/tools/chart-render (tests may use
 * ../shared; the project does not at run time). `CHART_RENDER=/path/to/binary` skips the build.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';

export const REPO = path.resolve(__dirname, '../..');
export const CHART = path.join(REPO, 'helm/spawngate');
const TOOL_DIR = path.resolve(REPO, '../shared/tools/chart-render');

export interface K8sObject {
  apiVersion: string;
  kind: string;
  // annotations typed as present: a test reading a missing one fails with a TypeError, as it should
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations: Record<string, string> };
  [key: string]: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** Path of a chart-render binary, building it (Debian Go packages; apt as root) if needed. */
export function chartRenderBinary(): string {
  if (process.env.CHART_RENDER) return process.env.CHART_RENDER;
  const cacheDir = path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'spawngate-tests');
  const bin = path.join(cacheDir, 'chart-render');
  const source = path.join(TOOL_DIR, 'main.go');
  const fresh = existsSync(bin) && (!existsSync(source) || statSync(bin).mtimeMs >= statSync(source).mtimeMs);
  if (fresh) return bin;
  if (!existsSync(path.join(TOOL_DIR, 'build.sh'))) {
    throw new Error(`chart-render not found: expected ${TOOL_DIR}/build.sh (or set CHART_RENDER)`);
  }
  mkdirSync(cacheDir, { recursive: true });
  const tmp = `${bin}.${process.pid}`;
  const r = spawnSync('bash', [path.join(TOOL_DIR, 'build.sh'), tmp], { encoding: 'utf8', timeout: 900_000 });
  if (r.status !== 0) throw new Error(`building chart-render failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  execFileSync('mv', [tmp, bin]);
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

function args(o: RenderOptions): string[] {
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
  a.push('--name', o.name ?? 'sg', '--namespace', o.namespace ?? 'spawngate', o.chart ?? CHART);
  return a;
}

/** Raw output and exit status (for expected failures). */
export function renderRaw(o: RenderOptions = {}): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(chartRenderBinary(), args(o), { encoding: 'utf8' });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Every rendered document, parsed; throws with chart-render's message on a render error. */
export function render(o: RenderOptions = {}): K8sObject[] {
  const r = renderRaw(o);
  if (r.status !== 0) throw new Error(`chart-render failed (${r.status}): ${r.stderr}${r.stdout}`);
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
