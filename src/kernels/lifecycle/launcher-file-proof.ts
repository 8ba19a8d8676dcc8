/**
 * The second proof of an Enterprise Gateway launcher's payload on the local backend, for a sender whose
 * uid could no longer be read (response-address.ts). EG's launchers write the kernel's connection file
 * (key and ports) to `{connection_file}` before they connect to the response address, and on this
 * backend that path is in the kernel's own runtime directory (runtime-dir.ts: 0700, owned by the user
 * the kernel runs as). A payload whose key and five ports equal that file's was made by someone who
 * could read it: the kernel's user, or root. So the file counts only as what spawngate or the launcher
 * made it: a regular file at that very path (no symlink), owned by the kernel's uid, readable and
 * writable by no one else, and small.
 *
 * A launcher whose argv has no `{connection_file}` (EG's stock DistributedProcessProxy kernelspecs)
 * writes a temporary file of its own instead; its payload then matches nothing here and is believed
 * only through the uid.
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

/** Not a proof, and reading again cannot make it one. */
class Untrusted extends Error {}

function sameKey(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The file's connection info, or undefined while it is being rewritten (missing, empty or partial). */
async function readOnce(fs: KernelFs, file: string, uid: number): Promise<FileInfo | undefined> {
  let dir: string;
  try {
    dir = await fs.realpath(path.dirname(file));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Untrusted("the kernel's runtime directory is gone");
    throw err;
  }
  let read: Awaited<ReturnType<typeof readConfinedFile>>;
  try {
    read = await readConfinedFile(fs, file, dir, MAX_CONNECTION_FILE_BYTES);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new Untrusted(`its connection file is not trusted (${(err as Error).message})`);
  }
  // readConfinedFile follows a symlink that stays inside the directory; the file itself must be there.
  if (read.real !== path.join(dir, path.basename(file))) throw new Untrusted('its connection file is a symlink');
  if (read.stat.uid !== uid) throw new Untrusted(`its connection file belongs to uid ${read.stat.uid}, not to the kernel's user`);
  // Readable by others, its key would be no secret; writable by others, it could say anything.
  if ((read.stat.mode & 0o077) !== 0) throw new Untrusted(`its connection file is open to others (mode ${(read.stat.mode & 0o777).toString(8)})`);
  let json: unknown;
  try {
    json = JSON.parse(read.data.toString('utf8'));
  } catch {
    return undefined;
  }
  const parsed = fileSchema.safeParse(json);
  return parsed.success ? parsed.data : undefined;
}

/**
 * Vouches for a payload whose key and ports equal those of `file`, which must be owned by `uid` (see
 * the module comment). `fs` and the timings are for tests.
 */
export function connectionFileVouch(file: string, uid: number, opts: { fs?: KernelFs; graceMs?: number } = {}): PayloadVouch {
  const fs = opts.fs ?? nodeFs;
  const grace = opts.graceMs ?? REWRITE_GRACE_MS;
  return async (report: LauncherReport) => {
    const until = Date.now() + grace;
    let info: FileInfo | undefined;
    try {
      for (;;) {
        info = await readOnce(fs, file, uid);
        if (info !== undefined || Date.now() >= until) break;
        await new Promise((r) => setTimeout(r, RETRY_MS));
      }
    } catch (err) {
      if (err instanceof Untrusted) return err.message;
      throw err;
    }
    if (info === undefined) return 'its connection file is missing or unreadable';
    const ports = report.ports;
    const samePorts = ports.shell_port === info.shell_port && ports.iopub_port === info.iopub_port && ports.stdin_port === info.stdin_port && ports.control_port === info.control_port && ports.hb_port === info.hb_port;
    return samePorts && sameKey(report.key, info.key) ? undefined : "its key and ports differ from those in the kernel's connection file";
  };
}
