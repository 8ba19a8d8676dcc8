/** Errors of the kernel launch path; each maps to one HTTP status in the gateway routes. */

/** The request is malformed (400): bad env, bad timeout, missing user. */
export class KernelRequestError extends Error {
  override readonly name = 'KernelRequestError';
}

/** Which rule of the quota contract refused a launch (the reason `spawngate_launches_refused_total` counts). */
export type QuotaRefusal = 'not_member' | 'inactive_user' | 'inactive_experiment' | 'unregistered_environment';

/** Quota or policy refuses the launch (403); the message names the environment and experiment. */
export class KernelQuotaError extends Error {
  override readonly name = 'KernelQuotaError';
  constructor(
    message: string,
    readonly reason: QuotaRefusal = 'not_member',
  ) {
    super(message);
  }
}

/** No such kernel for this caller (404). Other users' kernels are reported the same way. */
export class KernelNotFoundError extends Error {
  override readonly name = 'KernelNotFoundError';
  constructor(readonly kernelId: string) {
    super(`Kernel does not exist: ${kernelId}`);
  }
}

/** The launch failed (the backend's or the kernel's reason), 500. */
export class KernelLaunchError extends Error {
  override readonly name = 'KernelLaunchError';
}
