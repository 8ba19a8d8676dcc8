/**
 * Defaults and small helpers shared by both job-queue implementations, so that "identical semantics"
 * is one piece of code rather than two copies that drift: option defaults, job-name validation, the
 * retry decision and backoff formula, and the JSON round trip every payload and result goes through.
 */
import { UnrecoverableJobError, type JobOptions } from './types';

/** Total attempts (including the first) when `JobOptions.attempts` is not given. */
export const DEFAULT_ATTEMPTS = 3;
/** First retry delay in ms when `JobOptions.backoffMs` is not given; doubled per further attempt. */
export const DEFAULT_BACKOFF_MS = 500;
/** How long a finished job's result stays available to `waitFor`, ms. */
export const DEFAULT_RESULT_TTL_MS = 60_000;
/** How long `close()` waits for active jobs when no grace is given, ms. */
export const DEFAULT_CLOSE_GRACE_MS = 10_000;

const JOB_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;

/**
 * Job names become part of Redis keys (one BullMQ queue per name), so both implementations accept the
 * same restricted alphabet. Throws a plain Error: a bad name is a programming error, not a 4xx.
 */
export function assertJobName(name: string): void {
  if (!JOB_NAME.test(name)) {
    throw new Error(
      `invalid job name ${JSON.stringify(name)}: use letters, digits, '.', '_' or '-' (max 100)`,
    );
  }
}

/** The worker concurrency `process()` was given (default 1); a non-integer or < 1 is a programming error. */
export function resolveConcurrency(opts: { concurrency?: number }): number {
  const concurrency = opts.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error('concurrency must be an integer >= 1');
  return concurrency;
}

export function assertJobId(jobId: string): void {
  if (typeof jobId !== 'string' || jobId.length === 0 || jobId.length > 400) {
    throw new Error('jobId must be a non-empty string of at most 400 characters');
  }
  // BullMQ reserves '0' and ids starting with '0:'; refuse them in both implementations alike.
  if (jobId === '0' || jobId.startsWith('0:')) throw new Error(`jobId cannot be '0' or start with '0:'`);
}

export interface ResolvedJobOptions {
  jobId: string;
  attempts: number;
  backoffMs: number;
  delayMs: number;
}

export function resolveJobOptions(opts: JobOptions): ResolvedJobOptions {
  assertJobId(opts.jobId);
  const attempts = opts.attempts ?? DEFAULT_ATTEMPTS;
  const backoffMs = opts.backoffMs ?? DEFAULT_BACKOFF_MS;
  const delayMs = opts.delayMs ?? 0;
  if (!Number.isInteger(attempts) || attempts < 1) throw new Error('attempts must be an integer >= 1');
  if (!Number.isFinite(backoffMs) || backoffMs < 0) throw new Error('backoffMs must be >= 0');
  if (!Number.isFinite(delayMs) || delayMs < 0) throw new Error('delayMs must be >= 0');
  return { jobId: opts.jobId, attempts, backoffMs, delayMs };
}

/** True for `UnrecoverableJobError`, also across module copies and realms (compared by stable `name`). */
export function isUnrecoverable(err: unknown): boolean {
  return (
    err instanceof UnrecoverableJobError ||
    (typeof err === 'object' && err !== null && (err as { name?: unknown }).name === 'UnrecoverableJobError')
  );
}

/** The message of an error (duck-typed: errors may come from another realm), or the value as text. */
export function errorMessage(err: unknown): string {
  if (typeof err === 'object' && err !== null && typeof (err as { message?: unknown }).message === 'string') {
    return (err as { message: string }).message;
  }
  if (typeof err === 'string') return err;
  try {
    return JSON.stringify(err) ?? String(err);
  } catch {
    return String(err);
  }
}

/** Delay before attempt `failedAttempt + 1`: backoffMs · 2^(failedAttempt − 1), as BullMQ's "exponential". */
export function backoffDelay(backoffMs: number, failedAttempt: number): number {
  return Math.round(backoffMs * 2 ** (failedAttempt - 1));
}

/**
 * Payloads and results cross Redis as JSON in the BullMQ implementation; the in-process one applies the
 * same round trip so a non-serialisable value fails (or changes) the same way in both. `undefined`
 * becomes `null`, as BullMQ stores it.
 */
export function jsonRoundTrip<T>(value: T): T {
  if (value === undefined) return null as T;
  return JSON.parse(JSON.stringify(value)) as T;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
