/**
 * One embedded database, many clients: the first spawngate process on a data directory starts the
 * engine and holds the lock; every other process (serve, worker, token, admin, migrate, sql) connects to
 * the running engine through its socket, so all see each other's changes at once. The holder stops the
 * engine on close with a smart shutdown, which waits for the other clients to finish.
 *
 * A long-lived process (serve, worker) never becomes a client of an engine a short CLI holds (that
 * CLI's exit would wait for it): it waits for the CLI to finish, then starts the engine itself.
 */
import fs from 'node:fs';
import type { Logger } from '../logging';
import { answers, embeddedUrl, startEngine } from './embedded-engine';
import { isAlive, lockPath, readLock, releaseLock, tryAcquire } from './embedded-lock';
import { createPostgresDb } from './postgres';
import { DatabaseUnavailableError, type Db } from './types';

export type EmbeddedRole = 'serve' | 'worker' | 'cli';

export interface EmbeddedDbOptions {
  dataDir: string;
  /** What this process is, written into the lock (default `cli`). */
  role?: EmbeddedRole;
  max?: number;
  logger?: Logger;
  /** How long to wait for the holder's engine to answer (or for a CLI holder to finish). Default 15 s. */
  waitMs?: number;
}

const LONG_LIVED = new Set(['serve', 'worker']);

/**
 * The engine is local and this data directory's own: a stopped engine refuses at once (its socket is
 * gone), and no network can partition it. The short timeouts that make a remote database answer 503
 * promptly would here only turn a stalled event loop (50 servers forked at once on a starved machine)
 * into false "database unavailable" errors, so they are long; the pool is larger than the default
 * because no other service shares this engine (its max_connections is 60 for a few processes).
 */
function clientDb(socketDir: string, options: EmbeddedDbOptions): Db {
  return createPostgresDb({
    url: embeddedUrl(socketDir),
    max: options.max ?? 16,
    connectionTimeoutMillis: 15_000,
    queryTimeoutMillis: 30_000,
    source: 'embedded database',
    logger: options.logger,
  });
}

/** Opens the data directory's embedded database, starting its engine when nobody runs it. */
export async function openEmbeddedDb(options: EmbeddedDbOptions): Promise<Db> {
  const role = options.role ?? 'cli';
  fs.mkdirSync(options.dataDir, { recursive: true, mode: 0o700 });
  const file = lockPath(options.dataDir);
  const deadline = Date.now() + (options.waitMs ?? 15_000);
  let holder = '';
  for (;;) {
    const mine = { pid: process.pid, role, socketDir: '', startedAt: new Date().toISOString() };
    if (tryAcquire(file, mine)) {
      try {
        const engine = await startEngine(options.dataDir);
        fs.writeFileSync(file, JSON.stringify({ ...mine, socketDir: engine.socketDir, enginePid: engine.pid }), { mode: 0o600 });
        const db = clientDb(engine.socketDir, options);
        return {
          ...db,
          async close() {
            await db.close();
            await engine.stop();
            releaseLock(file, process.pid);
          },
        };
      } catch (err) {
        releaseLock(file, process.pid);
        throw err;
      }
    }
    const lock = readLock(file);
    if (lock && !isAlive(lock.pid)) {
      releaseLock(file, lock.pid); // stale: its engine died with it (pdeathsig)
      continue;
    }
    if (lock) {
      holder = `pid ${lock.pid} (spawngate ${lock.role})`;
      const waitForIt = LONG_LIVED.has(role) && !LONG_LIVED.has(lock.role);
      if (!waitForIt && lock.socketDir && (await answers(lock.socketDir))) {
        const db = clientDb(lock.socketDir, options);
        await db.ping();
        return db;
      }
    }
    if (Date.now() > deadline) {
      throw new DatabaseUnavailableError(
        `the embedded database in ${options.dataDir} is held by ${holder || 'another process'} and does not answer; ` +
          `wait for that process to finish or stop it (kill ${holder ? holder.split(' ')[1] : '<pid>'}), then retry`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
