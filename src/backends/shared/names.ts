/**
 * The one workload-name rule every backend enforces: a lower-case DNS label (RFC 1123), at most 63
 * characters. It is a valid pod and container name, and has no dot, slash or `..` that could reach a
 * path (the local backend builds file names from it).
 */
import { PermanentBackendError } from '../types';

const NAME_RE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export function isValidWorkloadName(name: unknown): name is string {
  return typeof name === 'string' && NAME_RE.test(name);
}

/** @throws PermanentBackendError naming the rule when `name` breaks it. */
export function assertValidWorkloadName(name: unknown): asserts name is string {
  if (!isValidWorkloadName(name)) {
    throw new PermanentBackendError(
      `invalid workload name ${JSON.stringify(name)}: must be a lower-case DNS label (a-z, 0-9, '-', at most 63 characters, starting and ending with a letter or digit)`,
    );
  }
}

/**
 * What every backend refuses before touching anything: a name breaking the rule above, or a command
 * that is not a non-empty list of strings.
 * @throws PermanentBackendError
 */
export function assertValidSpec(spec: { name?: unknown; command?: unknown } | undefined): void {
  assertValidWorkloadName(spec?.name);
  const command = spec?.command;
  if (!Array.isArray(command) || command.length === 0 || !command.every((a) => typeof a === 'string') || !command[0]) {
    throw new PermanentBackendError(`workload ${String(spec?.name)}: command must be a non-empty list of strings`);
  }
}
