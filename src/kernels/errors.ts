/**
 * Named errors of kernelspec discovery and lookup. Each has a stable `name`; the HTTP error mapper
 * gives them statuses (`src/spawner-api/error-mapper.ts`), the launch path may do the same.
 */

/** A user name that cannot name a home directory safely (400). */
export class InvalidUsernameError extends Error {
  override readonly name = 'InvalidUsernameError';
}

/** A name as it may appear in a message: kernelspec names only, never a path a caller typed. */
const shown = (name: string): string => (/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name) && !name.includes('..') ? name : '(not a kernel spec name)');

/** No kernelspec of that name is visible to that user (404). */
export class KernelspecNotFoundError extends Error {
  override readonly name = 'KernelspecNotFoundError';
  constructor(readonly kernelName: string) {
    super(`Kernel spec ${shown(kernelName)} not found`);
  }
}

/**
 * The kernelspec exists for that user but its `authorized_users` / `unauthorized_users` exclude the
 * user (403, as Enterprise Gateway answers).
 */
export class KernelspecForbiddenError extends Error {
  override readonly name = 'KernelspecForbiddenError';
  constructor(
    readonly kernelName: string,
    readonly user: string | undefined,
  ) {
    super(
      user === undefined
        ? `kernel spec ${kernelName} is restricted to named users; name the user with ?user=`
        : `User ${user} is not authorized to use kernel spec ${kernelName}`,
    );
  }
}

/** The configuration's `kernels.allowed_users` / `kernels.denied_users` keep this user out (403). */
export class GatewayUserDeniedError extends Error {
  override readonly name = 'GatewayUserDeniedError';
  constructor(readonly user: string) {
    super(
      `user '${user}' is not allowed to use the kernel gateway (kernels.allowed_users / kernels.denied_users)`,
    );
  }
}

/**
 * A kernelspec resource (logo, kernel.js, …) that does not exist or may not be served (404). The
 * message names neither the file asked for nor any resolved path (they would let one user probe
 * another's home); `detail` says why, for the log only.
 */
export class KernelspecResourceNotFoundError extends Error {
  override readonly name = 'KernelspecResourceNotFoundError';
  constructor(
    readonly kernelName: string,
    readonly resource: string,
    readonly detail = 'not found',
  ) {
    super(`kernel spec ${shown(kernelName)} has no such resource`);
  }
}
