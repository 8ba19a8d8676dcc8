/**
 * Chooses the database at start-up: Postgres when SPAWNGATE_DATABASE_URL is set, else the embedded
 * Postgres of the data directory (embedded.ts), upgrading a PGlite directory of an earlier release. Fails fast with a message naming the variable (host/port only, never the
 * password) when Postgres cannot be reached; retrying is the caller's choice.
 */
import type { Logger } from '../logging';
import { openEmbeddedDb, type EmbeddedRole } from './embedded';
import { upgradePgliteDir } from './pglite-upgrade';
import { createPostgresDb, describePostgresUrl } from './postgres';
import { DatabaseUnavailableError, type Db } from './types';

export interface OpenDatabaseOptions {
  /** SPAWNGATE_DATABASE_URL; unset or empty selects the embedded database. */
  databaseUrl?: string;
  /** SPAWNGATE_DATA_DIR; the embedded cluster lives in `<dataDir>/pg`. */
  dataDir: string;
  /** Which process opens the embedded database (see embedded.ts). Default `cli`. */
  role?: EmbeddedRole;
  /** Postgres pool size. Default 10. */
  max?: number;
  /** Receives connection-loss warnings. Default: the service logger. */
  logger?: Logger;
}

const URL_VARIABLE = 'SPAWNGATE_DATABASE_URL';

/**
 * Opens the configured database and checks that it answers. Does not migrate (see `migrate`).
 * Throws DatabaseUnavailableError when Postgres cannot be reached or refuses the connection.
 */
export async function openDatabase(options: OpenDatabaseOptions): Promise<Db> {
  if (!options.databaseUrl) {
    const db = await openEmbeddedDb({ dataDir: options.dataDir, role: options.role, max: options.max, logger: options.logger });
    try {
      await upgradePgliteDir(options.dataDir, db);
    } catch (err) {
      await db.close().catch(() => undefined);
      throw err;
    }
    return db;
  }

  const where = describePostgresUrl(options.databaseUrl);
  if (where === '<invalid URL>') {
    throw new Error(`${URL_VARIABLE} is not a valid postgres:// URL`);
  }
  const db = createPostgresDb({
    url: options.databaseUrl,
    max: options.max,
    source: URL_VARIABLE,
    logger: options.logger,
  });
  try {
    await db.ping();
  } catch (err) {
    await db.close().catch(() => undefined);
    // ping() already names host/port/database and the variable; keep its message, add what to do.
    const reason = (err as { message?: unknown } | null)?.message ?? String(err);
    throw new DatabaseUnavailableError(
      `${reason}. Check that Postgres is running and that ${URL_VARIABLE} points at it.`,
      { cause: err },
    );
  }
  return db;
}
