/**
 * The one place a domain error becomes an HTTP answer: status, a message a person can act on, extra
 * headers (`Retry-After`) and, for errors whose details must not reach the caller (filesystem paths),
 * what to log instead. Used by the express error handler and by the websocket upgrade path alike.
 */
import { AdminError } from '../admin';
import { DatabaseUnavailableError } from '../db';
import { IdentityProviderUnavailableError, TokenRejectedError, UserDeactivatedError } from '../identity';
import { QueueUnavailableError } from '../jobs';
import {
  GatewayUserDeniedError,
  InvalidUsernameError,
  KernelLaunchError,
  KernelNotFoundError,
  KernelQuotaError,
  KernelRequestError,
  KernelspecForbiddenError,
  KernelspecNotFoundError,
  KernelspecResourceNotFoundError,
  ProcessProxyError,
} from '../kernels';
import { LimitExceededError, NameError, ProfileError } from '../profiles';
import { HttpError } from './errors';

export interface HttpAnswer {
  status: number;
  message: string;
  headers?: Record<string, string>;
  /** Logged (never sent) when set: details the caller must not see. */
  logDetail?: Record<string, unknown>;
}

const ADMIN_STATUS: Record<AdminError['kind'], number> = { invalid: 400, 'not-found': 404, conflict: 409 };

const isBodyTooLarge = (err: unknown): boolean =>
  typeof err === 'object' && err !== null && (err as { type?: unknown }).type === 'entity.too.large';

/** Status and message for any error; unknown errors are a 500 "internal error" (their details are logged by the caller). */
export function toHttpAnswer(err: unknown): HttpAnswer {
  if (err instanceof HttpError) return { status: err.status, message: err.message };
  if (err instanceof AdminError) return { status: ADMIN_STATUS[err.kind], message: err.message };
  if (err instanceof KernelRequestError || err instanceof ProcessProxyError || err instanceof InvalidUsernameError || err instanceof NameError || err instanceof ProfileError) {
    return { status: 400, message: err.message };
  }
  if (err instanceof TokenRejectedError) return { status: 401, message: `invalid token: ${err.message}` };
  if (err instanceof UserDeactivatedError) return { status: 403, message: err.message };
  if (err instanceof KernelQuotaError || err instanceof GatewayUserDeniedError || err instanceof KernelspecForbiddenError) {
    return { status: 403, message: err.message };
  }
  if (err instanceof KernelspecResourceNotFoundError) {
    // The detail may name resolved paths in other homes; the caller learns only "not found".
    return { status: 404, message: err.message, logDetail: { kernelspec: err.kernelName, resource: err.resource, detail: err.detail } };
  }
  if (err instanceof KernelNotFoundError || err instanceof KernelspecNotFoundError) return { status: 404, message: err.message };
  if (isBodyTooLarge(err)) return { status: 413, message: 'request body too large' };
  if (err instanceof SyntaxError && 'body' in err) return { status: 400, message: 'request body is not valid JSON' };
  if (err instanceof LimitExceededError) {
    return { status: 429, message: err.message, headers: { 'Retry-After': String(Math.max(1, Math.ceil(err.retryAfterSeconds))) } };
  }
  if (err instanceof KernelLaunchError) return { status: 500, message: `Kernel launch failed: ${err.message}` };
  if (err instanceof DatabaseUnavailableError) return { status: 503, message: `database unavailable: ${err.message}` };
  if (err instanceof QueueUnavailableError) return { status: 503, message: `job queue unavailable: ${err.message}` };
  if (err instanceof IdentityProviderUnavailableError) return { status: 503, message: err.message };
  return { status: 500, message: 'internal error' };
}

/** Enterprise Gateway's error body `{"reason", "message"}`. */
export function errorBody(answer: HttpAnswer): { reason: string; message: string } {
  return { reason: new HttpError(answer.status, answer.message).reason, message: answer.message };
}
