/**
 * Picks the job-queue implementation from configuration: BullMQ on Redis when a Redis URL is set
 * (`SPAWNGATE_REDIS_URL`), the in-process runner otherwise (the embedded default).
 */
import type { Logger } from '../logging';
import { createBullmqQueue } from './bullmq/queue';
import { createInProcessQueue } from './inprocess/queue';
import type { JobQueue } from './types';

export interface OpenJobQueueOptions {
  /** Redis URL; unset or empty: in-process queue. */
  redisUrl?: string;
  /** Redis key prefix for BullMQ (ignored in-process). */
  prefix: string;
  logger?: Logger;
  /**
   * How long a worker's claim on a job lasts without renewal (BullMQ lock), ms; a worker that died
   * mid-job is detected after about this long and its job retried. Default 30000.
   */
  lockDurationMs?: number;
}

/** Returns the queue; connections are opened in the background (use `ping()` for readiness). */
export function openJobQueue(options: OpenJobQueueOptions): JobQueue {
  if (options.redisUrl) {
    return createBullmqQueue({
      redisUrl: options.redisUrl,
      prefix: options.prefix,
      logger: options.logger,
      lockDurationMs: options.lockDurationMs,
      stalledIntervalMs: options.lockDurationMs,
    });
  }
  return createInProcessQueue({ logger: options.logger });
}
