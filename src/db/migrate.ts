/**
 * Versioned SQL migrations. Files are `migrations/NNN_name.sql` next to this module (copied into dist/
 * by the build); each is applied once, in version order, in its own transaction, and recorded in
 * `schema_migrations(version, name, applied_at)`. Every applying transaction first takes a
 * transaction-scoped advisory lock, so replicas starting together apply each file exactly once: the
 * second waits, then sees the first's row and skips.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { DatabaseUnavailableError, type Db, type Queryable } from './types';

export interface Migration {
  version: number;
  /** The part of the file name after `NNN_`, without `.sql`. */
  name: string;
}

export interface MigrateOptions {
  /** Directory of `NNN_name.sql` files. Default: `migrations/` beside this module. */
  directory?: string;
}

/** Arbitrary constant identifying spawngate's migration lock among the database's advisory locks. */
const MIGRATION_LOCK_KEY = '7302186650459062841';

const FILE_PATTERN = /^(\d+)_([A-Za-z0-9_-]+)\.sql$/;

const DEFAULT_DIRECTORY = path.join(__dirname, 'migrations');

interface MigrationFile extends Migration {
  file: string;
}

async function loadMigrations(directory: string): Promise<MigrationFile[]> {
  const entries = await fs.readdir(directory);
  const files: MigrationFile[] = [];
  for (const entry of entries) {
    if (!entry.endsWith('.sql')) continue;
    const match = FILE_PATTERN.exec(entry);
    if (!match) throw new Error(`migration file ${entry} in ${directory} is not named NNN_name.sql`);
    files.push({ version: Number(match[1]), name: match[2] as string, file: path.join(directory, entry) });
  }
  files.sort((a, b) => a.version - b.version);
  for (let i = 1; i < files.length; i++) {
    const [prev, cur] = [files[i - 1] as MigrationFile, files[i] as MigrationFile];
    if (prev.version === cur.version) {
      throw new Error(
        `two migrations have version ${cur.version}: ${path.basename(prev.file)}, ${path.basename(cur.file)}`,
      );
    }
  }
  return files;
}

async function appliedVersions(q: Queryable): Promise<Set<number>> {
  const [exists] = await q.query<{ present: boolean }>(
    "SELECT to_regclass('schema_migrations') IS NOT NULL AS present",
  );
  if (!exists?.present) return new Set();
  const rows = await q.query<{ version: number }>('SELECT version FROM schema_migrations');
  return new Set(rows.map((r) => Number(r.version)));
}

/**
 * Migrations present as files but not yet recorded in the database, in the order `migrate` would apply
 * them. Read-only; takes no lock.
 */
export async function pendingMigrations(db: Queryable, options: MigrateOptions = {}): Promise<Migration[]> {
  const files = await loadMigrations(options.directory ?? DEFAULT_DIRECTORY);
  const applied = await appliedVersions(db);
  return files.filter((f) => !applied.has(f.version)).map(({ version, name }) => ({ version, name }));
}

/**
 * Applies every pending migration, each in its own transaction under the migration lock, and returns
 * those this call applied (empty when the database was up to date or another replica got there first).
 * Idempotent. A failing file rolls back alone and is rethrown naming the file; earlier files stay applied.
 */
export async function migrate(db: Db, options: MigrateOptions = {}): Promise<Migration[]> {
  const files = await loadMigrations(options.directory ?? DEFAULT_DIRECTORY);
  const before = await appliedVersions(db);
  const applied: Migration[] = [];
  for (const migration of files) {
    if (before.has(migration.version)) continue;
    const sql = await fs.readFile(migration.file, 'utf8');
    const didApply = await db.tx(async (q) => {
      await q.query('SELECT pg_advisory_xact_lock($1::bigint)', [MIGRATION_LOCK_KEY]);
      await q.query(
        `CREATE TABLE IF NOT EXISTS schema_migrations (
           version     INTEGER PRIMARY KEY,
           name        TEXT NOT NULL,
           applied_at  TIMESTAMPTZ NOT NULL DEFAULT now()
         )`,
      );
      const done = await q.query('SELECT 1 FROM schema_migrations WHERE version = $1', [migration.version]);
      if (done.length > 0) return false;
      try {
        await q.query(sql);
      } catch (err) {
        if (err instanceof DatabaseUnavailableError) throw err;
        const reason = (err as { message?: unknown } | null)?.message ?? String(err);
        throw new Error(`migration ${path.basename(migration.file)} failed: ${reason}`, { cause: err });
      }
      await q.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
        migration.version,
        migration.name,
      ]);
      return true;
    });
    if (didApply) applied.push({ version: migration.version, name: migration.name });
  }
  return applied;
}
