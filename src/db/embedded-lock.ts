/**
 * The lock file `<data dir>/pg.lock`: which spawngate process runs the embedded engine of a data
 * directory. Created exclusively (O_EXCL), so two processes can never both start the engine; a lock
 * whose process is gone is stale and removed by the next opener. Postgres's own postmaster.pid guards
 * the cluster a second time.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

const lockSchema = z.object({
  pid: z.number().int().positive(),
  role: z.string(),
  socketDir: z.string(),
  startedAt: z.string(),
});
export type EngineLock = z.infer<typeof lockSchema>;

export function lockPath(dataDir: string): string {
  return path.join(path.resolve(dataDir), 'pg.lock');
}

/** Writes the lock for this process; false when another process holds it. */
export function tryAcquire(file: string, lock: EngineLock): boolean {
  let fd: number;
  try {
    fd = fs.openSync(file, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
  try {
    fs.writeSync(fd, JSON.stringify(lock));
  } finally {
    fs.closeSync(fd);
  }
  return true;
}

/** The current lock; undefined when there is none (or it is being written: the caller retries). */
export function readLock(file: string): EngineLock | undefined {
  try {
    return lockSchema.parse(JSON.parse(fs.readFileSync(file, 'utf8')));
  } catch {
    return undefined;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  return !isZombie(pid);
}

/**
 * A holder killed with -9 stays a zombie until its parent reaps it, and `kill(pid, 0)` still succeeds on a
 * zombie; it holds nothing (its engine died with it), so it must not block the next process.
 */
function isZombie(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X';
  } catch (err) {
    // Gone since kill() answered: dead. No procfs (not Linux): kill()'s answer stands.
    return (err as NodeJS.ErrnoException).code === 'ENOENT' && fs.existsSync('/proc/self/stat');
  }
}

/** Removes the lock if `pid` holds it (a stale lock of a dead process, or our own on close). */
export function releaseLock(file: string, pid: number): void {
  if (readLock(file)?.pid === pid) fs.rmSync(file, { force: true });
}
