/**
 * Names that reach backends: user and server names are validated at the edge, and workload names are
 * derived deterministically so a retried launch finds the workload it created before.
 */
import { nameSlug } from '../backends';

export class NameError extends Error {
  override readonly name = 'NameError';
}

/**
 * The one user-name rule (kernels, servers, tokens, OIDC, the admin API alike) is JupyterHub's own
 * (3.0 to 5.x `Authenticator.validate_username`: not empty, no `/`, no leading or trailing whitespace),
 * narrowed only where the name could not be one path component, since it names the home directory
 * `SPAWNGATE_HOME_ROOT/<name>`: not `.` or `..`, no control characters (NUL included), no unpaired
 * surrogate (not encodable as UTF-8), at most 255 UTF-8 bytes. Everything else is accepted as it is:
 * any script, spaces inside, apostrophes, `@`, `+`, `%`, `\`, `&`, `#` — `ünïcode.user`, `a b`,
 * `o'neil`, `zoë-łódź`, `张伟`.
 */
const MAX_COMPONENT_BYTES = 255;
/** A name longer than this many UTF-8 bytes cannot be a path component. */
export const MAX_NAME_BYTES = MAX_COMPONENT_BYTES;
const CONTROL = /\p{Cc}/u;
const EDGE_SPACE = /^\p{White_Space}|\p{White_Space}$/u;
const LONE_SURROGATE = /\p{Cs}/u;

/** What every name that may become a path component must satisfy; `undefined` when it does. */
function componentProblem(name: string): string | undefined {
  if (name.includes('/')) return "must not contain '/'";
  if (name === '.' || name === '..') return "must not be '.' or '..'";
  if (CONTROL.test(name)) return 'must not contain control characters';
  if (LONE_SURROGATE.test(name)) return 'must be valid Unicode';
  if (Buffer.byteLength(name, 'utf8') > MAX_COMPONENT_BYTES) return `is longer than ${MAX_COMPONENT_BYTES} bytes (UTF-8)`;
  return undefined;
}

/** Returns why `name` is not an acceptable user name, or `undefined` if it is. */
export function usernameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (EDGE_SPACE.test(name)) return 'must not start or end with whitespace';
  return componentProblem(name);
}

function shown(name: string): string {
  return JSON.stringify([...name].length > 40 ? `${[...name].slice(0, 40).join('')}…` : name);
}

/** Throws `NameError` unless `name` is an acceptable user name (see `usernameProblem`); returns it. */
export function validateUsername(name: string): string {
  const problem = usernameProblem(name);
  if (problem !== undefined) throw new NameError(`invalid user name ${shown(name)}: ${problem}`);
  return name;
}

/**
 * Returns why `name` is not an acceptable server name, or `undefined`. JupyterHub 3.0 to 5.x refuse only
 * a `/` in a named server's name (`''` is the default server); the path-component limits above apply too,
 * as the name is part of proxy routes (`/user/<user>/<server>/`) and of the workload's identity.
 */
export function serverNameProblem(name: string): string | undefined {
  return name === '' ? undefined : componentProblem(name);
}

/** Throws `NameError` unless `name` is an acceptable server name (see `serverNameProblem`); returns it. */
export function validateServerName(name: string): string {
  const problem = serverNameProblem(name);
  if (problem !== undefined) throw new NameError(`invalid server name ${shown(name)}: ${problem}`);
  return name;
}

/** Every server workload's name starts so. */
export const SERVER_WORKLOAD_PREFIX = 'sg-srv-';

/**
 * `sg-srv-<slug>`: the slug of `user` (default server) or `user/server` (named server; neither name may
 * contain `/`, so the key is unambiguous), escaped reversibly as `nameSlug` does — `sg-srv-alice`,
 * `sg-srv-a-20b` for `a b` — and hashed when the escape does not fit. A DNS label of at most 63
 * characters. Servers started under the earlier scheme (`sg-srv-<lossy readable>-<hash>`) keep their
 * recorded `workload_name`, so they are still found after an upgrade.
 */
export function serverWorkloadName(username: string, serverName: string): string {
  const key = serverName ? `${username}/${serverName}` : username;
  return `${SERVER_WORKLOAD_PREFIX}${nameSlug(key, 63 - SERVER_WORKLOAD_PREFIX.length)}`;
}
