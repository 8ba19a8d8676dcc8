/**
 * Real system users for isolation tests (root only): `useradd` makes them, each with a home under a
 * test home root that it owns (0700), and `removeSystemUsers` deletes them again. `asUser` runs a shell
 * probe as one of them, the way a hostile tenant's code would run.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export interface SystemUser {
  name: string;
  uid: number;
  gid: number;
  home: string;
}

/** Whether this process can create users (root with useradd); tests that need it skip loudly otherwise. */
export function canCreateUsers(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to create system users with useradd';
  if (spawnSync('useradd', ['--help']).error) return 'useradd is not installed';
  return undefined;
}

/**
 * Creates `name` (a fresh system user; any leftover of an earlier run is removed first) and
 * `<homeRoot>/<name>` owned by it, mode 0700. Names must suit useradd (lower-case, ≤ 32 chars).
 */
export function createSystemUser(name: string, homeRoot: string): SystemUser {
  spawnSync('userdel', [name], { stdio: 'ignore' });
  execFileSync('useradd', ['--no-create-home', '--shell', '/bin/sh', '--user-group', name], { stdio: 'pipe' });
  const uid = Number(execFileSync('id', ['-u', name]).toString().trim());
  const gid = Number(execFileSync('id', ['-g', name]).toString().trim());
  const home = path.join(homeRoot, name);
  fs.mkdirSync(home, { recursive: true });
  fs.chownSync(home, uid, gid);
  fs.chmodSync(home, 0o700);
  return { name, uid, gid, home };
}

export function removeSystemUsers(users: SystemUser[]): void {
  for (const u of users) spawnSync('userdel', [u.name], { stdio: 'ignore' });
}

/** Runs `script` with /bin/sh as `user`; returns its exit status and output (never throws). */
export function asUser(user: SystemUser | string, script: string, opts: { timeoutMs?: number } = {}): { status: number | null; stdout: string; stderr: string } {
  const name = typeof user === 'string' ? user : user.name;
  const r = spawnSync('su', ['-s', '/bin/sh', name, '-c', script], { timeout: opts.timeoutMs ?? 20_000, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}
