/**
 * `spawngate backup <file>` and `spawngate restore <file>`: a SQL dump of spawngate's data (src/db/dump.ts),
 * consistent while the service runs, and its load into a (fresh) database.
 */
import fs from 'node:fs';
import type { Config } from '../config';
import { dumpDatabase, migrate, openDatabase, restoreDump } from '../db';

export async function runBackup(cfg: Config, file: string): Promise<string> {
  const db = await openDatabase({ databaseUrl: cfg.env.SPAWNGATE_DATABASE_URL, dataDir: cfg.dataDir });
  try {
    await migrate(db);
    const dump = await dumpDatabase(db);
    // 0600 whatever the umask: the dump holds token hashes and audit details.
    fs.writeFileSync(file, dump, { mode: 0o600 });
    fs.chmodSync(file, 0o600);
    return `backup written to ${file} (${Buffer.byteLength(dump)} bytes)\n`;
  } finally {
    await db.close();
  }
}

export async function runRestore(cfg: Config, file: string, opts: { replace?: boolean }): Promise<string> {
  const dump = fs.readFileSync(file, 'utf8');
  const db = await openDatabase({ databaseUrl: cfg.env.SPAWNGATE_DATABASE_URL, dataDir: cfg.dataDir });
  try {
    await restoreDump(db, dump, opts);
    return `restored ${file}\n`;
  } finally {
    await db.close();
  }
}
