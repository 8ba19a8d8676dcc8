/**
 * Turning what dockerode throws into the backend contract's two error classes: an unreachable daemon
 * or an engine 5xx is worth retrying (TransientBackendError), a refusal the same request will get again
 * is not (PermanentBackendError). Messages name the operation and the engine's own explanation.
 */
import { PermanentBackendError, TransientBackendError } from '../types';

/** The fields dockerode/docker-modem put on errors. */
interface EngineError extends Error {
  statusCode?: number;
  code?: string;
  json?: { message?: string } | string | null;
  reason?: string;
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

export function statusOf(err: unknown): number | undefined {
  return (err as EngineError | undefined)?.statusCode;
}

export function isNotFound(err: unknown): boolean {
  return statusOf(err) === 404;
}

export function isConflict(err: unknown): boolean {
  return statusOf(err) === 409;
}

/**
 * A create refused because the name is taken. Docker says 409; podman 4 says 409 or, when two creates
 * race inside the engine, 500 "the container name … is already in use".
 */
export function isNameConflict(err: unknown): boolean {
  return isConflict(err) || (statusOf(err) === 500 && /name .* is already in use/i.test(engineMessage(err)));
}

/** The engine's message (the JSON body's `message`), else the error's own. */
export function engineMessage(err: unknown): string {
  const e = err as EngineError;
  if (e?.json && typeof e.json === 'object' && typeof e.json.message === 'string') return e.json.message.trim();
  if (typeof e?.json === 'string' && e.json.trim()) return e.json.trim();
  return String(e?.message ?? err);
}

/**
 * Maps an engine error to TransientBackendError / PermanentBackendError. `what` says what was being
 * done ("create container sg-x"); `endpoint` names the daemon for "cannot reach" messages.
 */
export function toBackendError(err: unknown, what: string, endpoint: string): Error {
  if (err instanceof PermanentBackendError || err instanceof TransientBackendError) return err;
  const e = err as EngineError;
  if (e?.code === 'EACCES') {
    return new PermanentBackendError(
      `docker: permission denied on ${endpoint} while trying to ${what}: spawngate's user may not use this socket`,
      { cause: err },
    );
  }
  if (e?.code && UNREACHABLE.has(e.code)) {
    return new TransientBackendError(
      `docker daemon unreachable at ${endpoint} (${e.code}) while trying to ${what}; is the engine running?`,
      { cause: err },
    );
  }
  const status = e?.statusCode;
  const message = `docker: cannot ${what}: ${engineMessage(err)}`;
  // 409 is a conflict with the container's current state (a removal in flight), as on Kubernetes: the
  // contract makes it transient (see TransientBackendError); callers map the 409s they understand first.
  if (status === undefined || status >= 500 || status === 409 || status === 429) return new TransientBackendError(message, { cause: err });
  return new PermanentBackendError(message, { cause: err });
}
