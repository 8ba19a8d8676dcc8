/**
 * Reads a Prometheus text exposition (what /metrics answers) into samples a test can look up by name
 * and labels. Written here because the npm parser tried (parse-prometheus-text-format 1.1) folds the
 * samples of a labelled histogram into one and drops their labels; this reads samples line by line,
 * which is all the tests need (`_bucket`, `_sum`, `_count` are samples of their own names).
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

// name, optional {labels}, value (timestamps are not used by prom-client).
const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?/gy;

const unescape = (v: string): string => v.replace(/\\(.)/g, (_m, c: string) => (c === 'n' ? '\n' : c));

export class Exposition {
  readonly samples: Sample[] = [];
  readonly types = new Map<string, string>();

  constructor(text: string) {
    for (const line of text.split('\n')) {
      const type = /^# TYPE (\S+) (\S+)$/.exec(line);
      if (type) this.types.set(type[1] as string, type[2] as string);
      if (line === '' || line.startsWith('#')) continue;
      const m = LINE.exec(line);
      if (!m) throw new Error(`not a sample line: ${line}`);
      const labels: Record<string, string> = {};
      const body = m[2] ?? '';
      LABEL.lastIndex = 0;
      let consumed = 0;
      for (let l = LABEL.exec(body); l; l = LABEL.exec(body)) {
        labels[l[1] as string] = unescape(l[2] as string);
        consumed = LABEL.lastIndex;
      }
      if (consumed !== body.length) throw new Error(`unparsable labels: ${line}`);
      this.samples.push({ name: m[1] as string, labels, value: Number(m[3]) });
    }
  }

  /** The samples of `name` whose labels include `labels` (all of them). */
  series(name: string, labels: Record<string, string> = {}): Sample[] {
    return this.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  }

  /** The value of the one sample of `name` with exactly these labels; undefined when there is none. */
  value(name: string, labels: Record<string, string> = {}): number | undefined {
    const want = Object.entries(labels);
    return this.samples.find((s) => s.name === name && Object.keys(s.labels).length === want.length && want.every(([k, v]) => s.labels[k] === v))?.value;
  }
}
