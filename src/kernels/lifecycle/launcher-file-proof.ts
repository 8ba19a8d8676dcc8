/**
 * The second proof of an Enterprise Gateway launcher's payload on the local backend, for a sender whose
 * uid could no longer be read (response-address.ts). EG's launchers write the kernel's connection file
 * (key and ports) before they connect to the response address, and on this backend every place they
 * write it is in the kernel's own runtime directory (runtime-dir.ts: 0700, owned by the user the kernel
 * runs as). A payload whose key and five ports equal such a file's was made by someone who could read
 * it: the kernel's user, or root. So a file counts only as what spawngate or the launcher made it: a
 * regular file (no symlink), owned by the kernel's uid, readable and writable by no one else, and small.
 *
 * Where the launcher writes it:
 * - `{connection_file}` in argv: that path, `<dir>/c.json` (EG's Python launcher rewrites it);
 * - otherwise a temporary file of its own (EG's `python_distributed`: Python's
 *   `tempfile.mkstemp(prefix="kernel-<id>_", suffix=".json")`; EG's R launcher, whatever its argv:
 *   R's `tempfile("kernel-<id>_", fileext=".json")`, which is inside R's session directory
 *   `$TMPDIR/RtmpXXXXXX`). The launch sets TMPDIR to the kernel's directory for such launchers
 *   (launcher-bring-up.ts), so those land in `<dir>/kernel-<id>_*.json` or
 *   `<dir>/RtmpXXXXXX/kernel-<id>_*.json`.
 *   Only names with THIS kernel's id count; if several do, any one that matches is proof enough.
 */
import { timingSafeEqual } from 'node:crypto';
import path from 'node:path';
import { z } from 'zod';
import { nodeFs, readConfinedFile, type KernelFs } from '../fs-layer';
import type { LauncherReport, PayloadVouch } from './response-address';

/** A connection file is a few hundred bytes. */
const MAX_CONNECTION_FILE_BYTES = 16 * 1024;

/**
 * ipykernel rewrites the file a moment after the payload with jupyter_core's `secure_write`, which
 * removes it and writes it anew: for that instant it is missing or empty. Read again for this long.
 */
const REWRITE_GRACE_MS = 2000;
const RETRY_MS = 50;

const port = z.number().int().min(1).max(65535);
const fileSchema = z.looseObject({ key: z.string(), shell_port: port, iopub_port: port, stdin_port: port, control_port: port, hb_port: port });
type FileInfo = z.infer<typeof fileSchema>;

/** At most this many files are read per attempt: only the kernel's own user can add more, to no gain. */
const MAX_CANDIDATES = 16;
/** R's session directory: `Rtmp` and mkdtemp's six characters. */
const R_SESSION_DIR = /^Rtmp[A-Za-z0-9]{6}$/;
/** What Python's mkstemp (eight of [a-z0-9_]) or R's tempfile (hex digits) put between prefix and suffix. */
const TEMP_MIDDLE = /^[A-Za-z0-9_]{1,64}$/;

/** Whether `name` is a temporary connection file an EG launcher makes for kernel `kernelId` (`kernel-<id>_*.json`). */
export function isLauncherTempFile(kernelId: string, name: string): boolean {
  const prefix = `kernel-${kernelId}_`;
  return name.startsWith(prefix) && name.endsWith('.json') && TEMP_MIDDLE.test(name.slice(prefix.length, -'.json'.length));
}

/** Where a kernel's launcher may have written its connection file (see the module comment). */
export interface LauncherFiles {
  /** The kernel's own runtime directory. */
  dir: string;
  kernelId: string;
  /** `{connection_file}`, when the kernelspec's argv names it. */
  connectionFile?: string;
}

/** Not a proof, and reading again cannot make it one. */
class Untrusted extends Error {}

function sameKey(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

/** One file's verdict: its connection info, being rewritten (missing, empty or partial), or not trusted. */
type FileRead = { info: FileInfo } | { pending: true } | { untrusted: string };

async function readOnce(fs: KernelFs, file: string, uid: number): Promise<FileRead> {
  let dir: string;
  try {
    dir = await fs.realpath(path.dirname(file));
  } catch (err) {
    // R's session directory goes when R exits; the kernel's own directory was checked by the caller.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { pending: true };
    throw err;
  }
  let read: Awaited<ReturnType<typeof readConfinedFile>>;
  try {
    read = await readConfinedFile(fs, file, dir, MAX_CONNECTION_FILE_BYTES);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { pending: true };
    return { untrusted: `its connection file is not trusted (${(err as Error).message})` };
  }
  // readConfinedFile follows a symlink that stays inside the directory; the file itself must be there.
  if (read.real !== path.join(dir, path.basename(file))) return { untrusted: 'its connection file is a symlink' };
  if (read.stat.uid !== uid) return { untrusted: `its connection file belongs to uid ${read.stat.uid}, not to the kernel's user` };
  // Readable by others, its key would be no secret; writable by others, it could say anything.
  if ((read.stat.mode & 0o077) !== 0) return { untrusted: `its connection file is open to others (mode ${(read.stat.mode & 0o777).toString(8)})` };
  let json: unknown;
  try {
    json = JSON.parse(read.data.toString('utf8'));
  } catch {
    return { pending: true };
  }
  const parsed = fileSchema.safeParse(json);
  return parsed.success ? { info: parsed.data } : { pending: true };
}

/**
 * R's session directory `<dir>/<name>` when it is what R makes (mkdtemp: a directory, not a symlink,
 * of the kernel's uid, closed to others), else undefined: files in it are then not looked at.
 */
async function sessionDir(fs: KernelFs, realDir: string, name: string, uid: number): Promise<string | undefined> {
  const sub = path.join(realDir, name);
  try {
    if ((await fs.realpath(sub)) !== sub) return undefined;
    const st = await fs.stat(sub);
    return st.isDirectory() && st.uid === uid && (st.mode & 0o077) === 0 ? sub : undefined;
  } catch {
    return undefined;
  }
}

/** The files to compare with, in a stable order, at most MAX_CANDIDATES; `name` is relative to the kernel's directory. */
async function candidates(fs: KernelFs, where: LauncherFiles, uid: number, withTempFiles: boolean): Promise<{ file: string; name: string }[]> {
  let realDir: string;
  try {
    realDir = await fs.realpath(where.dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Untrusted("the kernel's runtime directory is gone");
    throw err;
  }
  const files = where.connectionFile ? [{ file: where.connectionFile, name: path.basename(where.connectionFile) }] : [];
  if (!withTempFiles) return files;
  for (const name of (await fs.readdir(realDir)).sort()) {
    if (files.length >= MAX_CANDIDATES) break;
    if (isLauncherTempFile(where.kernelId, name)) files.push({ file: path.join(realDir, name), name });
    else if (R_SESSION_DIR.test(name)) {
      const sub = await sessionDir(fs, realDir, name, uid);
      if (sub === undefined) continue;
      const inner = await fs.readdir(sub).catch(() => [] as string[]);
      for (const n of inner.sort()) if (isLauncherTempFile(where.kernelId, n)) files.push({ file: path.join(sub, n), name: `${name}/${n}` });
    }
  }
  return files.slice(0, MAX_CANDIDATES);
}

const DIFFER = "its key and ports differ from those in the kernel's connection file";
const MISSING = 'its connection file is missing or unreadable';

function matches(report: LauncherReport, info: FileInfo): boolean {
  const p = report.ports;
  const samePorts = p.shell_port === info.shell_port && p.iopub_port === info.iopub_port && p.stdin_port === info.stdin_port && p.control_port === info.control_port && p.hb_port === info.hb_port;
  return samePorts && sameKey(report.key, info.key);
}

/** One look at every candidate: matched, or why not and whether a later look might (a file being rewritten, none yet). */
async function attempt(fs: KernelFs, where: LauncherFiles, uid: number, withTempFiles: boolean, report: LauncherReport): Promise<{ matched: true } | { matched: false; pending: boolean; reason: string }> {
  const files = await candidates(fs, where, uid, withTempFiles);
  if (files.length === 0) return { matched: false, pending: true, reason: `no connection file of the kernel's launcher (kernel-${where.kernelId}_*.json) is in its directory` };
  let pending = false;
  const reasons: string[] = [];
  for (const { file } of files) {
    const r = await readOnce(fs, file, uid);
    if ('info' in r && matches(report, r.info)) return { matched: true };
    if ('pending' in r) pending = true;
    reasons.push('info' in r ? DIFFER : 'pending' in r ? MISSING : r.untrusted);
  }
  if (files.length === 1) return { matched: false, pending, reason: reasons[0] ?? MISSING };
  const named = files.map((f, i) => `${f.name}: ${reasons[i] ?? MISSING}`);
  return { matched: false, pending, reason: `none of its ${files.length} connection files matches (${named.join('; ')})` };
}

function vouchFor(where: LauncherFiles, uid: number, withTempFiles: boolean, opts: { fs?: KernelFs; graceMs?: number }): PayloadVouch {
  const fs = opts.fs ?? nodeFs;
  const grace = opts.graceMs ?? REWRITE_GRACE_MS;
  return async (report: LauncherReport) => {
    const until = Date.now() + grace;
    for (;;) {
      let outcome: Awaited<ReturnType<typeof attempt>>;
      try {
        outcome = await attempt(fs, where, uid, withTempFiles, report);
      } catch (err) {
        if (err instanceof Untrusted) return err.message;
        throw err;
      }
      if (outcome.matched) return undefined;
      if (!outcome.pending || Date.now() >= until) return outcome.reason;
      await new Promise((r) => setTimeout(r, RETRY_MS));
    }
  };
}

/**
 * Vouches for a payload whose key and ports equal those of `file` alone, which must be owned by `uid`
 * (see the module comment). `fs` and the timings are for tests.
 */
export function connectionFileVouch(file: string, uid: number, opts: { fs?: KernelFs; graceMs?: number } = {}): PayloadVouch {
  return vouchFor({ dir: path.dirname(file), kernelId: '', connectionFile: file }, uid, false, opts);
}

/**
 * Vouches for a payload whose key and ports equal those of any file the kernel's launcher may have
 * written in the kernel's own directory: `{connection_file}` when its argv names it, and the
 * temporary files EG's launchers make for this kernel id (see the module comment); each owned by `uid`.
 */
export function launcherFilesVouch(where: LauncherFiles, uid: number, opts: { fs?: KernelFs; graceMs?: number } = {}): PayloadVouch {
  return vouchFor(where, uid, true, opts);
}
