/**
 * Finding executables the way exec would, but up front: a missing command becomes a clear permanent
 * error instead of an exit status, and the util-linux wrappers (prlimit, setpriv) are located once.
 */
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import path from 'node:path';
import { PermanentBackendError } from '../types';

export function isExecutableFile(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false;
    accessSync(file, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The absolute path `spawn` will exec, or a PermanentBackendError naming what is wrong. */
export function resolveExecutable(command: string, pathVar: string, cwd: string): string {
  if (command.includes('/')) {
    const file = path.resolve(cwd, command);
    if (isExecutableFile(file)) return file;
    throw new PermanentBackendError(`command not found or not executable: ${command}`);
  }
  for (const dir of pathVar.split(path.delimiter)) {
    if (!dir) continue;
    const file = path.resolve(cwd, dir, command);
    if (isExecutableFile(file)) return file;
  }
  throw new PermanentBackendError(`command not found: ${command} (searched PATH=${pathVar})`);
}

/** Finds a util-linux tool (`prlimit`, `setpriv`) on the service's PATH or in the usual places. */
export function findTool(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/bin', '/bin', '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (dir && isExecutableFile(path.join(dir, name))) return path.join(dir, name);
  }
  return undefined;
}
