/**
 * Names that reach backends: user and server names are validated at the edge, and workload names are
 * derived deterministically so a retried launch finds the workload it created before.
 */
import { createHash } from 'node:crypto';

export class NameError extends Error {
  override readonly name = 'NameError';
}

/**
 * The one user-name rule (kernels, servers, tokens, the admin API alike): a letter, digit or `_`
 * first (so never `.`, `..`, `-x`), then letters (any script, with combining marks), digits and
 * `. _ - @ +`. No `/`, `\\`, `%`, NUL, whitespace or other control characters; at most 128 characters
 * and 255 UTF-8 bytes (one path component, since the name is the home directory's). This admits
 * JupyterHub's usual names: `alice`, `a.b-c_d`, `alice@example.org`, `a+b`, `josé`, `张伟`.
 */
const USERNAME = /^[\p{L}\p{N}_][\p{L}\p{M}\p{N}._@+-]*$/u;
export const MAX_USERNAME_CHARS = 128;
const MAX_COMPONENT_BYTES = 255;
const SERVERNAME = /^[\p{L}\p{N}._@+-]{0,255}$/u;

/** Returns why `name` is not an acceptable user name, or `undefined` if it is. */
export function usernameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if ([...name].length > MAX_USERNAME_CHARS) return `is longer than ${MAX_USERNAME_CHARS} characters`;
  if (Buffer.byteLength(name, 'utf8') > MAX_COMPONENT_BYTES) return `is longer than ${MAX_COMPONENT_BYTES} bytes`;
  if (!USERNAME.test(name)) return 'may contain only letters, digits and . _ - @ + and must start with a letter, digit or _';
  return undefined;
}

/** Throws `NameError` unless `name` is an acceptable user name (see `usernameProblem`); returns it. */
export function validateUsername(name: string): string {
  const problem = usernameProblem(name);
  if (problem !== undefined) {
    const shown = JSON.stringify(name.length > 40 ? `${name.slice(0, 40)}…` : name);
    throw new NameError(`invalid user name ${shown}: ${problem}`);
  }
  return name;
}

export function validateServerName(name: string): string {
  if (!SERVERNAME.test(name) || name.includes('..')) {
    throw new NameError(`invalid server name '${name.slice(0, 64)}': use letters, digits and . _ @ + -`);
  }
  return name;
}

/** Every server workload's name starts so. */
export const SERVER_WORKLOAD_PREFIX = 'sg-srv-';

/** `sg-srv-<readable part>-<10 hex of sha256(user/server)>`, a DNS label of at most 63 characters. */
export function serverWorkloadName(username: string, serverName: string): string {
  const hash = createHash('sha256').update(`${username}/${serverName}`).digest('hex').slice(0, 10);
  const readable = `${username}${serverName ? `-${serverName}` : ''}`
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40)
    .replace(/-+$/g, '');
  return readable ? `${SERVER_WORKLOAD_PREFIX}${readable}-${hash}` : `${SERVER_WORKLOAD_PREFIX}${hash}`;
}
