/**
 * The one error for "this user (or experiment) is over a fair-share limit": too many kernels or
 * servers, too many launches in flight. It is not a refusal of *what* was asked (that is a quota or
 * request error) but of *now*: the HTTP layer answers 429 with `Retry-After`.
 */
export class LimitExceededError extends Error {
  override readonly name = 'LimitExceededError';
  constructor(
    message: string,
    /** The configured limit that was hit, e.g. `kernels.max_kernels_per_user`. */
    readonly limit: string,
    /** Seconds after which the same request may succeed (the `Retry-After` header). */
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}
