/** Named errors of the channels bridge; each has a stable `name`. */

/** The kernel did not answer a request (kernel_info, interrupt, shutdown) in time. */
export class KernelTimeoutError extends Error {
  override readonly name = 'KernelTimeoutError';
  constructor(
    readonly msgType: string,
    readonly timeoutMs: number,
    readonly kernelId?: string,
  ) {
    super(`kernel${kernelId ? ` ${kernelId}` : ''} did not answer ${msgType} within ${timeoutMs} ms`);
  }
}

/** The client was closed while the call was pending, or a call was made after `close()`. */
export class KernelClientClosedError extends Error {
  override readonly name = 'KernelClientClosedError';
  constructor(readonly kernelId?: string) {
    super(`kernel client${kernelId ? ` for ${kernelId}` : ''} is closed`);
  }
}
