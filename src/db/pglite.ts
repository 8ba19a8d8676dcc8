/**
 * The embedded `Db`: PGlite (Postgres compiled to WASM) in this process, on disk or in memory. PGlite
 * has one connection, so this module owns the serialization: one mutex admits either a single plain
 * query or a whole transaction at a time, so transactions never interleave and a query issued while a
 * transaction runs waits for its COMMIT/ROLLBACK.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { DatabaseUnavailableError, type Db, type Queryable } from './types';

export interface PgliteDbOptions {
  /** Directory holding the database files (created if missing), or `memory://` for a throwaway database. */
  dataDir: string;
}

/** FIFO mutex: `run` calls execute one at a time in arrival order. */
class Mutex {
  private tail: Promise<void> = Promise.resolve();

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const previous = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((resolve) => (release = resolve));
    await previous;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

async function run<T>(pg: PGlite, sql: string, params?: readonly unknown[]): Promise<T[]> {
  if (params && params.length > 0) return (await pg.query<T>(sql, [...params])).rows;
  // No parameters → simple protocol, which (as with `pg`) allows several statements in one string.
  const results = await pg.exec(sql);
  return (results[results.length - 1]?.rows ?? []) as T[];
}

/**
 * Removes group and other bits below `dir`. PGlite's file system layer creates files 0666 whatever the
 * umask; the data directory itself is 0700, but a file copied or archived out of it should not carry
 * those bits either. Best effort: a file vanishing meanwhile is fine.
 */
async function makePrivate(dir: string): Promise<void> {
  if (dir.includes('://')) return; // memory:// and other non-directory stores
  let entries: import('node:fs').Dirent[];
  try {
    entries = await fsp.readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) await makePrivate(p);
    if (e.isFile() || e.isDirectory()) {
      await fsp.stat(p).then((st) => (st.mode & 0o077 ? fsp.chmod(p, st.mode & 0o700) : undefined)).catch(() => undefined);
    }
  }
}

/** Opens (creating if needed) a PGlite database. Resolves once it accepts queries. */
export async function createPgliteDb(options: PgliteDbOptions): Promise<Db> {
  const pg = await PGlite.create(options.dataDir);
  await makePrivate(options.dataDir);
  const mutex = new Mutex();
  // Marks the async context of a running tx, so a call to the Db from inside it fails instead of
  // waiting for the mutex forever. The flag is cleared when the tx ends, so work the callback started
  // in the background may use the Db afterwards.
  const insideTx = new AsyncLocalStorage<{ running: boolean }>();

  function exclusive<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (insideTx.getStore()?.running) {
      return Promise.reject(
        new Error(
          `db.${what}() called inside db.tx() on PGlite would deadlock; use the transaction's Queryable`,
        ),
      );
    }
    return mutex.run(fn);
  }

  const db: Db = {
    kind: 'pglite',

    query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]> {
      return exclusive('query', () => run<T>(pg, sql, params));
    },

    tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
      return exclusive('tx', () =>
        insideTx.run({ running: true }, async () => {
          let done = false;
          const q: Queryable = {
            query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<R[]> {
              if (done)
                return Promise.reject(
                  new Error('transaction already finished; use the Db, not the tx Queryable'),
                );
              return run<R>(pg, sql, params);
            },
          };
          await run(pg, 'BEGIN');
          try {
            const result = await fn(q);
            const commit = await pg.exec('COMMIT');
            if (commit[0]?.command === 'ROLLBACK') {
              throw new Error('transaction rolled back: a statement in it failed and the error was caught');
            }
            return result;
          } catch (err) {
            if (pg.isInTransaction()) await run(pg, 'ROLLBACK').catch(() => undefined);
            throw err;
          } finally {
            done = true;
            insideTx.getStore()!.running = false;
          }
        }),
      );
    },

    async ping(): Promise<void> {
      try {
        await db.query('SELECT 1');
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        throw new DatabaseUnavailableError(`embedded database (PGlite) is unavailable: ${reason}`, {
          cause: err,
        });
      }
    },

    async close(): Promise<void> {
      await mutex.run(() => pg.close());
      await makePrivate(options.dataDir);
    },
  };
  return db;
}
