/**
 * Prints query results the way psql's default (aligned) output does, for `spawngate sql` when psql is
 * not installed: centred headers, a `-+-` rule, numbers right-aligned, `(N rows)`, and the command tag
 * for statements without a result set.
 */
import type { QueryResult } from 'pg';

/** int2, int4, int8, oid, float4, float8, numeric, money: psql right-aligns these. */
const NUMERIC_TYPES = new Set([20, 21, 23, 26, 700, 701, 790, 1700]);

const width = (s: string): number => [...s].length;

function centre(s: string, w: number): string {
  const pad = w - width(s);
  const left = Math.floor(pad / 2);
  return ' '.repeat(left) + s + ' '.repeat(pad - left);
}

function cell(v: unknown): string {
  if (v === null || v === undefined) return '';
  return typeof v === 'string' ? v : JSON.stringify(v);
}

/** One result as psql prints it, ending in a newline. */
export function formatResult(r: QueryResult): string {
  if (!r.fields || r.fields.length === 0) {
    if (!r.command) return '';
    // psql prints INSERT's (always zero) oid before the row count.
    if (r.command === 'INSERT') return `INSERT 0 ${r.rowCount ?? 0}\n`;
    return r.rowCount !== null && ['UPDATE', 'DELETE', 'MERGE', 'COPY', 'MOVE', 'FETCH'].includes(r.command) ? `${r.command} ${r.rowCount}\n` : `${r.command}\n`;
  }
  const names = r.fields.map((f) => f.name);
  const rows = (r.rows as unknown[][]).map((row) => row.map(cell));
  const widths = names.map((n, i) => Math.max(width(n), ...rows.map((row) => width(row[i]!))));
  const right = r.fields.map((f) => NUMERIC_TYPES.has(f.dataTypeID));
  const lines = [
    // psql pads every header cell, the last included, but not the last cell of a data row.
    ' ' + names.map((n, i) => centre(n, widths[i]!)).join(' | ') + ' ',
    widths.map((w) => '-'.repeat(w + 2)).join('+'),
    ...rows.map((row) =>
      (' ' + row.map((v, i) => (right[i] ? v.padStart(widths[i]!) : v.padEnd(widths[i]!))).join(' | ')).replace(/\s+$/, ''),
    ),
    `(${rows.length} ${rows.length === 1 ? 'row' : 'rows'})`,
  ];
  return lines.join('\n') + '\n\n';
}
