/**
 * What every admin command needs: the database named by SPAWNGATE_DATABASE_URL (or the embedded one in
 * SPAWNGATE_DATA_DIR), migrated; the audit actor (`cli:<OS user>`); and the output mode.
 */
import os from 'node:os';
import type { AuditActor } from '../../admin';
import type { Config } from '../../config';
import { migrate, openDatabase, type Db } from '../../db';
import type { Io } from './output';

export interface AdminContext {
  io: Io;
  /** Opens (and migrates) the database once per command. */
  withDb<T>(fn: (db: Db) => Promise<T>): Promise<T>;
  actor: AuditActor;
}

function osUser(): string {
  try {
    return os.userInfo().username;
  } catch {
    return String(process.getuid?.() ?? 'unknown');
  }
}

export function createAdminContext(config: () => Config, io: Io): AdminContext {
  return {
    io,
    actor: { actor: `cli:${osUser()}`, via: 'cli' },
    async withDb(fn) {
      const cfg = config();
      const db = await openDatabase({ databaseUrl: cfg.env.SPAWNGATE_DATABASE_URL, dataDir: cfg.dataDir });
      try {
        await migrate(db);
        return await fn(db);
      } finally {
        await db.close();
      }
    },
  };
}
