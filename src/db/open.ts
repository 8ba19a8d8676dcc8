/**
 * Chooses the database at start-up: Postgres when SPAWNGATE_DATABASE_URL is set, else embedded PGlite
 * under the data directory. Fails fast with a message naming the variable (host/port only, never the
 * password) when Postgres cannot be reached; retrying is the caller's choice.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Logger } from '../logging';
import { createPgliteDb } from './pglite';
import { createPostgresDb, describePostgresUrl } from './postgres';
import { DatabaseUnavailableError, type Db } from './types';

export interface OpenDatabaseOptions {
  /** SPAWNGATE_DATABASE_URL; unset or empty selects embedded PGlite. */
  databaseUrl?: string;
  /** SPAWNGATE_DATA_DIR; PGlite keeps its files in `<dataDir>/db`. */
  dataDir: string;
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
    const dir = path.join(options.dataDir, 'db');
    await fs.mkdir(dir, { recursive: true });
    return createPgliteDb({ dataDir: dir });
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
