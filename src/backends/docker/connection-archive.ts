/**
 * Delivering a kernel's connection info (ports and HMAC key) as a file rather than an environment
 * variable: a container's environment is shown to anyone who may inspect it. The file is copied into
 * the created (not yet started) container with the engine's archive endpoint, owned by the container
 * user and readable by it alone; the launcher reads it at `CONNECTION_FILE`.
 */
import path from 'node:path';
import { pack } from 'tar-stream';
import { CONNECTION_FILE } from '../connection-secret';

export interface ConnectionArchive {
  /** Directory the archive is extracted in (the container's root). */
  extractTo: string;
  tar: Buffer;
}

/** `uid:gid` of a container's `User` field (numeric only: spawngate always sets numbers). */
export function ownerOf(user: string | undefined): { uid: number; gid: number } | undefined {
  const m = /^(\d+):(\d+)$/.exec(user ?? '');
  return m ? { uid: Number(m[1]), gid: Number(m[2]) } : undefined;
}

/**
 * A tar holding the connection file's directory (0700) and the file (0400), both owned by uid:gid.
 * Only the last directory is an entry: its parents (e.g. `/var/run`, a symlink to `/run` in Debian
 * images) are left as the image has them and created by the engine if missing.
 */
export async function connectionArchive(json: string, owner: { uid: number; gid: number }): Promise<ConnectionArchive> {
  const tar = pack();
  const rel = CONNECTION_FILE.replace(/^\//, '');
  const mtime = new Date();
  tar.entry({ name: `${path.posix.dirname(rel)}/`, type: 'directory', mode: 0o700, uid: owner.uid, gid: owner.gid, mtime });
  tar.entry({ name: rel, type: 'file', mode: 0o400, uid: owner.uid, gid: owner.gid, mtime }, json);
  tar.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of tar) chunks.push(chunk as Buffer);
  return { extractTo: '/', tar: Buffer.concat(chunks) };
}
