/**
 * Usage over time for the admin page: the query (validated here, rows from src/db) and the sampler
 * that records one sample per experiment per interval. Every process with workers runs the sampler;
 * samples are keyed by interval start, so replicas sampling the same interval write one row, not two.
 */
import { z } from 'zod';
import { recordUsageSample, selectUsageSamples, type Queryable, type UsageSample } from '../db';
import type { Logger } from '../logging';
import { parseInput } from './schemas';

export const usageHistoryQuerySchema = z
  .object({
    hours: z.coerce.number().int().min(1).max(24 * 90).default(24).describe('how far back, hours (default 24)'),
    experiment: z.string().min(1).max(255).optional().describe('only this experiment'),
  })
  .strict();

export const usageSampleSchema = z.object({
  sampled_at: z.string().describe('start of the sampling interval, ISO 8601'),
  experiment: z.string().describe("'' for kernels without an experiment"),
  kernels: z.number().int(),
  cpu_request: z.number(),
  cpu_limit: z.number(),
  memory_request_mib: z.number().int(),
  memory_limit_mib: z.number().int(),
  gpu_limit: z.number().int(),
});

export function listUsageHistory(q: Queryable, input: unknown): Promise<UsageSample[]> {
  return selectUsageSamples(q, parseInput(usageHistoryQuerySchema, input));
}

export interface UsageSamplerOptions {
  intervalSeconds: number;
  retentionDays: number;
  logger: Logger;
}

/**
 * Samples now and then five times per interval (the first sampler to reach an interval records it, so
 * a sample is at most a fifth of an interval late even if one replica is down). Returns a stop function.
 */
export function startUsageSampler(q: Queryable, opts: UsageSamplerOptions): () => void {
  let running = false;
  const tick = (): void => {
    if (running) return;
    running = true;
    recordUsageSample(q, opts)
      .catch((err: unknown) => opts.logger.warn('usage sample failed', { error: err }))
      .finally(() => {
        running = false;
      });
  };
  tick();
  const timer = setInterval(tick, Math.max(1000, (opts.intervalSeconds * 1000) / 5));
  timer.unref();
  return () => clearInterval(timer);
}
