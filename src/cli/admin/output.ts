/**
 * Admin CLI output: `--json` prints the result as JSON (for scripts); otherwise a plain aligned table.
 * The table is a few lines of padding, not worth a dependency.
 */
export interface Io {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
}

function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (Array.isArray(v)) return v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join(', ');
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export function renderTable(rows: Record<string, unknown>[], columns?: string[]): string {
  if (rows.length === 0) return '(none)\n';
  const cols = columns ?? Object.keys(rows[0]!);
  const text = rows.map((r) => cols.map((c) => cell(r[c]).replace(/\s*\n\s*/g, ' ')));
  const widths = cols.map((c, i) => Math.max(c.length, ...text.map((t) => t[i]!.length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(widths[i]!)).join('  ').trimEnd();
  return [line(cols), line(widths.map((w) => '-'.repeat(w))), ...text.map(line)].join('\n') + '\n';
}

export function print(io: Io, json: boolean, value: unknown, columns?: string[]): void {
  if (json) return io.stdout(`${JSON.stringify(value, null, 2)}\n`);
  const rows = Array.isArray(value) ? value : [value];
  io.stdout(renderTable(rows as Record<string, unknown>[], columns));
}
