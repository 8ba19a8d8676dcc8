/**
 * Turning what @kubernetes/client-node throws into the contract's two error classes. A 4xx a retry
 * cannot fix is permanent; 409 (a conflict with the object's current state, e.g. a stale
 * resourceVersion or a delete precondition), 429 and everything else are transient, as on the docker
 * backend (see TransientBackendError). Messages carry the API server's own explanation.
 */
import { PermanentBackendError, TransientBackendError } from '../types';

export function statusCode(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e?.code === 'number') return e.code;
  if (typeof e?.statusCode === 'number') return e.statusCode;
  return undefined;
}

export function apiMessage(err: unknown): string {
  const body = (err as { body?: unknown })?.body;
  if (typeof body === 'string') {
    try {
      const status = JSON.parse(body) as { message?: string };
      if (status.message) return status.message;
    } catch {
      return body.slice(0, 300);
    }
  }
  return err instanceof Error ? err.message : String(err);
}

/** API failures as the backend contract's errors; `what` says what was being done. */
export function backendError(what: string, err: unknown): Error {
  if (err instanceof PermanentBackendError || err instanceof TransientBackendError) return err;
  const code = statusCode(err);
  const message = `kubernetes backend: ${what} failed${code ? ` (${code})` : ''}: ${apiMessage(err)}`;
  if (code !== undefined && code >= 400 && code < 500 && code !== 409 && code !== 429) {
    return new PermanentBackendError(message, { cause: err });
  }
  return new TransientBackendError(message, { cause: err });
}
