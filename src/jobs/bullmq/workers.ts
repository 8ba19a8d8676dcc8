/**
 * The worker side of the BullMQ implementation: one BullMQ `Worker` per job name (so concurrency is per
 * name, as the contract says), each on connections BullMQ opens from the base's never-give-up settings.
 *
 * The processor adapts a `JobHandler`: it builds `JobInfo`, maps `UnrecoverableJobError` to BullMQ's
 * `UnrecoverableError` (fail at once, no further attempts), and can be aborted when `close` gives up
 * waiting. Closing first stops fetching and waits up to `graceMs` for active jobs; a job still running
 * then is *abandoned*: the worker's connections are cut before anything is written, so the job stays
 * active in Redis until its lock expires and another worker's stalled-job check puts it back to wait —
 * exactly what happens when a process dies mid-job. (The handler's promise cannot be cancelled; it
 * keeps running in this process, but its outcome is no longer recorded.)
 */
import { hostname } from 'node:os';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { JobHandler, JobInfo } from '../types';
import { errorMessage, isUnrecoverable } from '../common';
import type { RedisBase } from './redis-base';

export interface WorkerTuning {
  /** How long a worker's lock on an active job lasts without renewal (renewed every half), ms. */
  lockDurationMs: number;
  /** How often each worker looks for jobs whose lock expired (crashed workers), ms. */
  stalledIntervalMs: number;
  /** Pause before a worker retries after an unexpected Redis error, ms. */
  retryDelayMs: number;
}

interface Running {
  worker: Worker;
  /** Rejecters of the processor promises now in flight. */
  aborts: Set<(err: Error) => void>;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

export class JobWorkers {
  private readonly running = new Map<string, Running>();

  constructor(
    private readonly base: RedisBase,
    private readonly tuning: WorkerTuning,
  ) {}

  has(name: string): boolean {
    return this.running.has(name);
  }

  start(name: string, handler: JobHandler<unknown, unknown>, concurrency: number): void {
    const aborts = new Set<(err: Error) => void>();
    const worker = new Worker(this.base.queueName(name), (job: Job) => this.run(job, handler, aborts), {
      connection: this.base.blockingConnection(),
      prefix: this.base.prefix,
      name: `${hostname()}:${process.pid}`,
      concurrency,
      lockDuration: this.tuning.lockDurationMs,
      stalledInterval: this.tuning.stalledIntervalMs,
      maxStalledCount: 1,
      // BullMQ waits this long after an unexpected error before fetching again (default 15 s); shorter
      // so a worker resumes promptly once Redis is back.
      runRetryDelay: this.tuning.retryDelayMs,
    });
    const log = this.base.logger;
    worker.on('error', (err: Error) => this.base.reportError(`worker ${name}`, err));
    worker.on('failed', (job: Job | undefined, err: Error) => {
      log.warn('job attempt failed', {
        name,
        jobId: job?.id,
        attempt: job?.attemptsMade,
        error: err.message,
      });
    });
    worker.on('stalled', (jobId: string) => {
      log.warn('job stalled (its worker stopped renewing the lock); it will run again', { name, jobId });
    });
    this.running.set(name, { worker, aborts });
  }

  private async run(job: Job, handler: JobHandler<unknown, unknown>, aborts: Set<(err: Error) => void>) {
    const info: JobInfo<unknown> = {
      id: job.id ?? '',
      name: job.name,
      data: job.data,
      attempt: job.attemptsMade + 1,
      addedAt: job.timestamp,
    };
    let abort!: (err: Error) => void;
    const aborted = new Promise<never>((_, reject) => {
      abort = reject;
    });
    aborts.add(abort);
    try {
      return await Promise.race([Promise.resolve().then(() => handler(info)), aborted]);
    } catch (err) {
      if (isUnrecoverable(err)) throw new UnrecoverableError(errorMessage(err));
      throw err instanceof Error ? err : new Error(errorMessage(err));
    } finally {
      aborts.delete(abort);
    }
  }

  /** Stops every worker: no new jobs, active ones get `graceMs`, then they are abandoned (see header). */
  async close(graceMs: number): Promise<void> {
    const all = [...this.running.entries()];
    this.running.clear();
    await Promise.all(all.map(([name, r]) => this.closeOne(name, r, graceMs)));
  }

  private async closeOne(name: string, { worker, aborts }: Running, graceMs: number): Promise<void> {
    const closing = worker.close(false);
    closing.catch((err: unknown) => this.base.reportError(`worker ${name}`, err));
    if (await withTimeout(closing, graceMs)) return;
    if (aborts.size > 0) {
      this.base.logger.warn('closing worker: abandoning active jobs after the grace period', {
        name,
        jobs: aborts.size,
        graceMs,
      });
    }
    // Cut the connections first so nothing more is written for the abandoned jobs, then unblock the
    // processor promises so BullMQ's close can finish.
    await worker.disconnect().catch(() => undefined);
    const error = new Error('worker closed before the job finished');
    for (const abort of [...aborts]) abort(error);
    await withTimeout(closing, 5_000);
  }
}
