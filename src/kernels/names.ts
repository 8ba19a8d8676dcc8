/**
 * What a user name, a kernelspec name and a resource file name may look like. Everything that becomes
 * a path component passes through here first.
 */
import { InvalidUsernameError } from './errors';

/**
 * Allowed user names: a letter, digit or `_` first (so never `.`, `..`, `-x`), then letters (any
 * script, with combining marks), digits and `. _ - @ +`. No `/`, `\`, `%`, NUL, whitespace or other
 * control characters; at most 128 characters and 255 UTF-8 bytes (one path component). This admits
 * JupyterHub's usual names: `alice`, `a.b-c_d`, `alice@example.org`, `a+b`, `josé`, `张伟`.
 */
const USERNAME_RE = /^[\p{L}\p{N}_][\p{L}\p{M}\p{N}._@+-]*$/u;
export const MAX_USERNAME_CHARS = 128;
const MAX_COMPONENT_BYTES = 255;

/** Returns why `name` is not an acceptable user name, or `undefined` if it is. */
export function usernameProblem(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if ([...name].length > MAX_USERNAME_CHARS) return `is longer than ${MAX_USERNAME_CHARS} characters`;
  if (Buffer.byteLength(name, 'utf8') > MAX_COMPONENT_BYTES)
    return `is longer than ${MAX_COMPONENT_BYTES} bytes`;
  if (!USERNAME_RE.test(name)) {
    return 'may contain only letters, digits and . _ - @ + and must start with a letter, digit or _';
  }
  return undefined;
}

/** Throws `InvalidUsernameError` unless `name` is an acceptable user name; returns it otherwise. */
export function assertValidUsername(name: string): string {
  const problem = usernameProblem(name);
  if (problem !== undefined) {
    const shown = JSON.stringify(name.length > 40 ? `${name.slice(0, 40)}…` : name);
    throw new InvalidUsernameError(`invalid user name ${shown}: ${problem}`);
  }
  return name;
}

/**
 * Kernel directory names and conda environment names: ASCII letters, digits, `.`, `_`, `-`, not
 * starting with `.` or `-` (jupyter_client's rule, and what jupyter_server routes: `[\w.\-%]+`).
 * Others are skipped (logged at debug).
 */
const COMPONENT_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;
export const MAX_COMPONENT_CHARS = 128;
/** Longest exposed kernelspec name (`conda-env-<env>-<kernel>`). */
export const MAX_KERNEL_NAME_CHARS = 255;

export function isValidComponent(name: string): boolean {
  return name.length <= MAX_COMPONENT_CHARS && COMPONENT_RE.test(name);
}

/** A kernelspec name as requested over HTTP: same alphabet, up to 255 characters. */
export function isValidKernelName(name: string): boolean {
  return name.length <= MAX_KERNEL_NAME_CHARS && COMPONENT_RE.test(name);
}

/** nb_conda_kernels' naming: `conda-env-<env>-<kernel>`. */
export function condaKernelName(env: string, kernel: string): string {
  return ['conda-env', env, kernel].join('-'); // a flat string: it is kept in the index
}

/**
 * Resource file names served from a kernel directory: one path component, ASCII, not hidden
 * (`logo-64x64.png`, `kernel.js`, `kernel.css`, `logo-svg.svg`).
 */
const RESOURCE_RE = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/;
export function isValidResourceName(name: string): boolean {
  return RESOURCE_RE.test(name);
}
