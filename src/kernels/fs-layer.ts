/**
 * The file-system operations discovery uses, behind a small interface so tests can inject failures
 * (EACCES, EIO) that root cannot produce with chmod, and the confined read used for every file a
 * user controls: the file must resolve (symlinks followed) inside a given root, must be a regular
 * file, and must still be the same inode after it is opened.
 */
import { constants, realpathSync, stat as statCallback, statSync } from 'node:fs';
import fsp, { type FileHandle } from 'node:fs/promises';

export interface StatLike {
  dev: number;
  ino: number;
  mtimeMs: number;
  ctimeMs: number;
  size: number;
  /** Owner and permission bits: who could have written (and read) the file. */
  uid: number;
  mode: number;
  isDirectory(): boolean;
  isFile(): boolean;
}

export interface KernelFs {
  /** `stat(2)` (follows symlinks). */
  stat(path: string): Promise<StatLike>;
  /** `realpath(3)`. */
  realpath(path: string): Promise<string>;
  /** Entry names of a directory. */
  readdir(path: string): Promise<string[]>;
  /** `open(2)` with numeric flags. */
  open(path: string, flags: number): Promise<FileHandle>;
  /** `statfs(2)`'s file-system type (magic number); absent where it cannot be told. */
  fsType?(path: string): Promise<number>;
  /**
   * Synchronous `stat(2)`: undefined when the path does not exist, throws otherwise. Used only for
   * homes on a local file system (quick-check.ts); absent, every stat goes through `stat`.
   */
  statSync?(path: string): StatLike | undefined;
  /** Synchronous `realpath(3)`, same use. */
  realpathSync?(path: string): string;
}

/** `stat` through the callback API: measurably cheaper per call than `fs.promises.stat` on the hot path. */
function statCb(p: string): Promise<StatLike> {
  return new Promise((resolve, reject) => statCallback(p, (err, st) => (err ? reject(err) : resolve(st))));
}

export const nodeFs: KernelFs = {
  stat: statCb,
  realpath: (p) => fsp.realpath(p),
  readdir: (p) => fsp.readdir(p),
  open: (p, flags) => fsp.open(p, flags),
  fsType: async (p) => (await fsp.statfs(p)).type,
  statSync: (p) => statSync(p, { throwIfNoEntry: false }),
  realpathSync: (p) => realpathSync(p),
};

/** A fingerprint of a stat result: changes when the entry is replaced, written, renamed into or chmod-ed. */
export function signature(st: StatLike): string {
  // join() builds one flat string; a template literal would keep a tree of ~8 cons-strings alive per
  // signature (measured: about 1 KB per indexed kernelspec).
  return [st.dev, st.ino, st.mtimeMs, st.ctimeMs, st.size].join(':');
}

export function errorCode(err: unknown): string {
  return (err as NodeJS.ErrnoException | undefined)?.code ?? 'EUNKNOWN';
}

/** ENOENT / ENOTDIR: the thing simply is not there. */
export function isMissing(err: unknown): boolean {
  const c = errorCode(err);
  return c === 'ENOENT' || c === 'ENOTDIR';
}

/** True if `real` is `root` or below it (both absolute, symlink-free). */
export function isInside(real: string, root: string): boolean {
  if (root === '/') return real.startsWith('/');
  return real === root || real.startsWith(`${root}/`);
}

/** Raised when a path leaves its confinement root or is not what it should be. */
export class ConfinementError extends Error {
  override readonly name = 'ConfinementError';
}

/** Raised when a file exceeds the size cap. */
export class FileTooLargeError extends Error {
  override readonly name = 'FileTooLargeError';
}

const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0);

/**
 * Resolves `path` and checks that it is a directory inside `root` (when `root` is given). Returns
 * the real path and its stat.
 */
export async function confinedDir(
  fs: KernelFs,
  path: string,
  root: string | null,
): Promise<{ real: string; stat: StatLike }> {
  const real = await fs.realpath(path);
  if (root !== null && !isInside(real, root)) {
    throw new ConfinementError(`${path} resolves to ${real}, outside ${root}`);
  }
  const stat = await fs.stat(real);
  if (!stat.isDirectory()) throw new ConfinementError(`${path} is not a directory`);
  return { real, stat };
}

/**
 * Reads a whole regular file that must resolve inside `root`, at most `maxBytes` bytes. The file is
 * opened through its resolved path with O_NOFOLLOW|O_NONBLOCK (a FIFO cannot block a thread), and
 * after reading the path must still resolve to the same inode — so a symlink swapped in between the
 * check and the open is detected unless swapped back within the same microseconds (the residual race
 * of any path-based check; Node has no openat(2)).
 */
export async function readConfinedFile(
  fs: KernelFs,
  path: string,
  root: string,
  maxBytes: number,
): Promise<{ data: Buffer; stat: StatLike; real: string }> {
  const real = await fs.realpath(path);
  if (!isInside(real, root)) throw new ConfinementError(`${path} resolves to ${real}, outside ${root}`);
  // O_NONBLOCK: opening a FIFO returns at once (and fstat then refuses it) instead of blocking a thread.
  const handle = await fs.open(real, OPEN_FLAGS);
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) throw new ConfinementError(`${path} is not a regular file`);
    if (stat.size > maxBytes)
      throw new FileTooLargeError(`${path} is ${stat.size} bytes, more than the ${maxBytes}-byte limit`);
    // Read at most maxBytes + 1 so a file that grows after fstat is still caught.
    const buf = Buffer.allocUnsafe(Math.min(stat.size, maxBytes) + 1);
    let total = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, total, buf.length - total, total);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total === buf.length) break;
    }
    if (total > maxBytes) throw new FileTooLargeError(`${path} is more than the ${maxBytes}-byte limit`);
    if (total === buf.length) throw new ConfinementError(`${path} grew while it was being read`);
    // The path must still lead to this very file: a symlink swapped in meanwhile is caught here.
    const again = await fs.realpath(path);
    if (again !== real) throw new ConfinementError(`${path} changed while it was being read`);
    const now = await fs.stat(again);
    if (now.dev !== stat.dev || now.ino !== stat.ino)
      throw new ConfinementError(`${path} changed while it was being read`);
    return { data: buf.subarray(0, total), stat, real };
  } finally {
    await handle.close();
  }
}

/** Runs `fn` over `items` with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  if (items.length <= limit) return Promise.all(items.map(fn));
  const out = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    for (;;) {
      const i = next++;
      if (i >= items.length) return;
      out[i] = await fn(items[i] as T);
    }
  });
  await Promise.all(workers);
  return out;
}
