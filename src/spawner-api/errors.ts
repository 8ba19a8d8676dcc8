/**
 * One HTTP error class and one mapper. Handlers throw `HttpError`; the error middleware turns it (and
 * the named infrastructure errors) into Enterprise Gateway's JSON shape `{"reason", "message"}`.
 */
import { STATUS_CODES } from 'node:http';

export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  get reason(): string {
    return STATUS_CODES[this.status] ?? 'Error';
  }
}

export const badRequest = (message: string, cause?: unknown): HttpError => new HttpError(400, message, { cause });
export const unauthorized = (message = 'missing or invalid token'): HttpError => new HttpError(401, message);
export const forbidden = (message: string): HttpError => new HttpError(403, message);
export const notFound = (message: string): HttpError => new HttpError(404, message);
export const conflict = (message: string): HttpError => new HttpError(409, message);
export const unavailable = (message: string, cause?: unknown): HttpError => new HttpError(503, message, { cause });
