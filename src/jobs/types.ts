/**
 * One job-queue contract with two implementations: BullMQ on Redis for production, and an in-process
 * runner for the embedded default. Both give the same semantics: a job id that is already waiting,
 * delayed or active is not added twice; failed attempts are retried with exponential backoff only
 * when the handler throws a retryable error; completed and failed jobs are removed so the same id may
 * run again later.
 */

export interface JobOptions {
  /** Deterministic id: adding while a job with this id is waiting/delayed/active is a no-op. */
  jobId: string;
  /** Total attempts including the first (default 3). */
  attempts?: number;
  /** First backoff delay in ms, doubled per attempt (default 500). */
  backoffMs?: number;
  /** Delay before the first attempt, ms. */
  delayMs?: number;
}

export interface JobInfo<T = unknown> {
  id: string;
  name: string;
  data: T;
  /** 1 for the first attempt. */
  attempt: number;
  /** When it was added, ms since epoch (for queue-wait metrics). */
  addedAt: number;
}

export type JobHandler<T = unknown, R = unknown> = (job: JobInfo<T>) => Promise<R>;

/** Thrown by a handler when a retry cannot help; the job fails at once. */
export class UnrecoverableJobError extends Error {
  override readonly name = 'UnrecoverableJobError';
}

/** The queue backend (Redis) is unreachable. Mapped to HTTP 503. */
export class QueueUnavailableError extends Error {
  override readonly name = 'QueueUnavailableError';
}

export interface JobResult<R = unknown> {
  id: string;
  state: 'completed' | 'failed';
  result?: R;
  error?: string;
}

export interface JobQueue {
  readonly kind: 'bullmq' | 'inprocess';
  /** Adds a job; resolves with whether it was newly added (false: a job with that id is pending). */
  add<T>(name: string, data: T, opts: JobOptions): Promise<{ added: boolean }>;
  /**
   * Registers the handler for jobs of `name` and starts processing them in this process with the given
   * concurrency. A process that never calls `process` only produces (API-only replicas).
   */
  process<T, R>(name: string, handler: JobHandler<T, R>, opts?: { concurrency?: number }): void;
  /**
   * Waits for the job with this id to finish (completed or failed after its last attempt), up to
   * `timeoutMs`. Resolves `undefined` on timeout. Works across processes for BullMQ.
   */
  waitFor<R>(jobId: string, timeoutMs: number): Promise<JobResult<R> | undefined>;
  /** Adds a repeatable job (every `everyMs`), de-duplicated across replicas. */
  repeat(name: string, everyMs: number): Promise<void>;
  /** Waiting + delayed + active counts, for metrics and /readyz. Throws QueueUnavailableError. */
  counts(): Promise<{ waiting: number; active: number; delayed: number }>;
  /** Throws QueueUnavailableError if the queue cannot be reached. */
  ping(): Promise<void>;
  /** Stops taking new jobs, lets active ones finish (up to `graceMs`), closes connections. */
  close(graceMs?: number): Promise<void>;
}
