/**
 * What a kernelspec name and a resource file name may look like, and the gateway's form of the one
 * user-name rule (`src/profiles`). Everything that becomes a path component passes through here first.
 */
import { usernameProblem } from '../profiles';
import { InvalidUsernameError } from './errors';

export { usernameProblem };

/** Throws `InvalidUsernameError` (the gateway's 400) unless `name` passes the one user-name rule. */
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
