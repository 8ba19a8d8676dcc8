/**
 * The local backend's files in `stateDir`: `<name>.json` (the record that lets a restarted spawngate
 * find its processes again), `<name>.log` (combined output) and `<name>.lock` (held while a workload is
 * being created or stopped, so two spawngate processes on one stateDir never start it twice).
 * Workload names are validated here before they ever become part of a path.
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { TransientBackendError, type WorkloadKind } from '../types';
import { identify, isSameLiveProcess, sleep, type ProcessIdentity } from './process-info';
import { KeyedQueue } from '../shared/keyed-queue';

import { assertValidWorkloadName as assertValidName, isValidWorkloadName as isValidName } from '../shared/names';

/** What was done about `spec.resources` (stored in the record and shown in `state.ref.limits`). */
export interface AppliedLimits {
  applied: string[];
  notApplied: string[];
}

export interface LocalRecord extends ProcessIdentity {
  version: 1;
  name: string;
  kind: WorkloadKind;
  /** ISO time the process was started. */
  startedAt: string;
  host: string;
  ports: Record<string, number>;
  labels: Record<string, string>;
  /** The argv as run (after port substitution, before any prlimit wrapper). */
  command: string[];
  workingDir?: string;
  limits: AppliedLimits;
  /** Who the process runs as; `user` is the hub user (KERNEL_USERNAME) when it belongs to one. */
  runAs?: { uid: number; gid: number; user?: string };
  /** Filled in by the spawngate process that reaped the child. */
  exit?: { code: number; reason: string; at: string };
}

export class RecordStore {
  constructor(readonly dir: string) {}

  /** Creates the directory 0700 — and makes an existing one 0700: workloads must not list it. */
  async init(): Promise<void> {
    await fsp.mkdir(this.dir, { recursive: true, mode: 0o700 });
    await fsp.chmod(this.dir, 0o700);
  }

  recordPath(name: string): string {
    assertValidName(name);
    return path.join(this.dir, `${name}.json`);
  }

  logPath(name: string): string {
    assertValidName(name);
    return path.join(this.dir, `${name}.log`);
  }

  /** The record, or undefined when there is none (or it is unreadable; a warning goes to `onCorrupt`). */
  async read(name: string, onCorrupt?: (err: unknown) => void): Promise<LocalRecord | undefined> {
    let text: string;
    try {
      text = await fsp.readFile(this.recordPath(name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new TransientBackendError(`cannot read record of ${name}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    try {
      const rec = JSON.parse(text) as LocalRecord;
      if (rec.version !== 1 || rec.name !== name || typeof rec.pid !== 'number')
        throw new Error('unexpected record shape');
      return rec;
    } catch (err) {
      onCorrupt?.(err);
      return undefined;
    }
  }

  /** Atomic replace (write a temporary file, then rename), so a reader never sees half a record. */
  async write(rec: LocalRecord): Promise<void> {
    const target = this.recordPath(rec.name);
    const tmp = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    await fsp.writeFile(tmp, JSON.stringify(rec, null, 2) + '\n', { mode: 0o600 });
    await fsp.rename(tmp, target);
  }

  async remove(name: string): Promise<void> {
    await fsp.rm(this.recordPath(name), { force: true });
  }

  /** Names of every record in the directory (other files are ignored). */
  async names(): Promise<string[]> {
    let entries: string[];
    try {
      entries = await fsp.readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return entries
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.slice(0, -'.json'.length))
      .filter(isValidName)
      .sort();
  }

  /** Keeps the previous run's output as `<name>.log.1` and returns the path for a fresh log. */
  async rotateLog(name: string): Promise<string> {
    const log = this.logPath(name);
    try {
      await fsp.rename(log, `${log}.1`);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    return log;
  }

  /**
   * Runs `fn` holding the lock on `name`: first an in-process queue (shared by every backend instance in
   * this process), then a `<name>.lock` file created exclusively, for other processes on the same
   * stateDir. A lock file whose holder process is gone is taken over.
   */
  async withLock<T>(name: string, fn: () => Promise<T>, timeoutMs = 30_000): Promise<T> {
    const lockPath = path.join(this.dir, `${name}.lock`);
    return inProcessLock(lockPath, async () => {
      await acquireFileLock(lockPath, timeoutMs);
      try {
        return await fn();
      } finally {
        await fsp.rm(lockPath, { force: true });
      }
    });
  }
}

/** Shared by every backend instance in this process (two instances on one stateDir must queue too). */
const inProcess = new KeyedQueue();
const inProcessLock = <T>(key: string, fn: () => Promise<T>): Promise<T> => inProcess.run(key, fn);

async function acquireFileLock(lockPath: string, timeoutMs: number): Promise<void> {
  const me = JSON.stringify(identify(process.pid));
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await fsp.writeFile(lockPath, me, { flag: 'wx', mode: 0o600 });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let holder: ProcessIdentity | undefined;
    try {
      holder = JSON.parse(await fsp.readFile(lockPath, 'utf8')) as ProcessIdentity;
    } catch {
      // Being written or removed right now; look again shortly — unless it is an old, empty leftover.
      const stat = await fsp.stat(lockPath).catch(() => undefined);
      if (stat && Date.now() - stat.mtimeMs > 5_000) await fsp.rm(lockPath, { force: true });
      holder = undefined;
    }
    if (holder && !isSameLiveProcess(holder)) {
      await fsp.rm(lockPath, { force: true }); // left behind by a spawngate that died holding it
      continue;
    }
    if (Date.now() > deadline) {
      throw new TransientBackendError(
        `workload ${path.basename(lockPath, '.lock')} is locked by another operation (pid ${holder?.pid ?? '?'})`,
      );
    }
    await sleep(50);
  }
}
