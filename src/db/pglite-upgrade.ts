/**
 * Upgrade from releases whose embedded database was PGlite (`<data dir>/db`): on first open with the
 * embedded engine, the PGlite data (users, experiments, quotas, tokens, audit …) is copied into the new
 * engine through a dump, and the old directory is kept beside it as `db.pglite-upgraded`, never deleted.
 */
import fs from 'node:fs';
import path from 'node:path';
import { logger as defaultLogger, type Logger } from '../logging';
import { dumpDatabase, restoreDump } from './dump';
import { migrate } from './migrate';
import { createPgliteDb } from './pglite';
import type { Db } from './types';

/** Copies a PGlite data directory's contents into `target` once; no-op when there is none. */
export async function upgradePgliteDir(dataDir: string, target: Db, logger: Logger = defaultLogger): Promise<boolean> {
  const old = path.join(dataDir, 'db');
  if (!fs.existsSync(path.join(old, 'PG_VERSION'))) return false;
  const source = await createPgliteDb({ dataDir: old });
  let dump: string;
  try {
    await migrate(source);
    dump = await dumpDatabase(source);
  } finally {
    await source.close();
  }
  await restoreDump(target, dump);
  const kept = path.join(dataDir, 'db.pglite-upgraded');
  fs.renameSync(old, kept);
  // Earlier releases left this directory 0755 (PGlite's files inside are made private on close).
  fs.chmodSync(kept, 0o700);
  logger.info('embedded database upgraded from PGlite', { dataDir, kept: 'db.pglite-upgraded' });
  return true;
}
