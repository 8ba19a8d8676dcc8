/**
 * Logical backup of spawngate's data as a SQL script, and its restore. The schema is not dumped: it is
 * the migrations', so a restore migrates the target first and then loads rows. The dump reads every
 * table in one REPEATABLE READ snapshot, so it is consistent while the service writes. Works on any Db
 * (embedded, external Postgres, PGlite), which also makes it the PGlite → embedded upgrade path.
 *
 * Written here rather than calling pg_dump: the embedded engine ships no pg_dump, and a system pg_dump
 * older than the server refuses to dump it.
 */
import { migrate } from './migrate';
import type { Db, Queryable } from './types';

const ROWS_PER_STATEMENT = 500;
/** Marks a spawngate dump; restore refuses other files. */
export const DUMP_HEADER = '-- spawngate backup';

const ident = (name: string): string => `"${name.replace(/"/g, '""')}"`;
const literal = (text: string): string => `'${text.replace(/'/g, "''")}'`;

async function dataTables(q: Queryable): Promise<string[]> {
  const rows = await q.query<{ name: string }>(
    "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'schema_migrations' ORDER BY tablename",
  );
  return rows.map((r) => r.name);
}

/** Returns the SQL dump of every spawngate table and sequence position. */
export async function dumpDatabase(db: Db): Promise<string> {
  return db.tx(async (q) => {
    await q.query('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    const versions = await q.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
    const out: string[] = [
      `${DUMP_HEADER} of ${new Date().toISOString()}; restore with: spawngate restore <file>`,
      `-- schema versions: ${versions.map((v) => v.version).join(',')}`,
      // Rows are loaded in any order and audit triggers must not record the restore itself.
      'SET session_replication_role = replica;',
    ];
    for (const table of await dataTables(q)) {
      const cols = await q.query<{ name: string }>(
        "SELECT column_name AS name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 AND is_generated = 'NEVER' ORDER BY ordinal_position",
        [table],
      );
      const list = cols.map((c) => ident(c.name)).join(', ');
      const rows = await q.query<{ j: string }>(`SELECT row_to_json(x)::text AS j FROM (SELECT ${list} FROM ${ident(table)}) x`);
      for (let i = 0; i < rows.length; i += ROWS_PER_STATEMENT) {
        const json = `[${rows.slice(i, i + ROWS_PER_STATEMENT).map((r) => r.j).join(',')}]`;
        out.push(`INSERT INTO ${ident(table)} (${list}) OVERRIDING SYSTEM VALUE SELECT ${list} FROM json_populate_recordset(NULL::${ident(table)}, ${literal(json)});`);
      }
    }
    const seqs = await q.query<{ name: string; last: string | number | null }>(
      "SELECT sequencename AS name, last_value AS last FROM pg_sequences WHERE schemaname = 'public' AND last_value IS NOT NULL ORDER BY sequencename",
    );
    for (const s of seqs) out.push(`SELECT setval(${literal(`public.${ident(s.name)}`)}, ${Number(s.last)}, true);`);
    out.push('SET session_replication_role = DEFAULT;', '');
    return out.join('\n');
  });
}

export class RestoreRefusedError extends Error {
  override readonly name = 'RestoreRefusedError';
}

/**
 * Migrates `db`, then loads `dump` into it in one transaction. Refuses a non-spawngate file and, unless
 * `replace`, a database that already has users (restoring is for a fresh directory).
 */
export async function restoreDump(db: Db, dump: string, opts: { replace?: boolean } = {}): Promise<void> {
  if (!dump.startsWith(DUMP_HEADER)) throw new RestoreRefusedError('not a spawngate backup (made by `spawngate backup <file>`)');
  await migrate(db);
  await db.tx(async (q) => {
    const n = (await q.query<{ n: number }>('SELECT count(*)::int AS n FROM users'))[0]?.n ?? 0;
    if (n > 0 && !opts.replace) throw new RestoreRefusedError(`the database already has ${n} users; restore into a fresh data directory, or pass --replace to discard its contents`);
    const tables = await dataTables(q);
    await q.query('SET LOCAL session_replication_role = replica');
    if (tables.length) await q.query(`TRUNCATE ${tables.map(ident).join(', ')}`);
    await q.query(dump);
  });
}
