/**
 * The producer side of the BullMQ implementation: one BullMQ `Queue` per job name over the shared
 * fail-fast connection, adding jobs with deterministic-id de-duplication, job schedulers for `repeat`,
 * counts, and looking a job up by id for `waitFor`.
 *
 * Job names are recorded in a Redis set (`<prefix>:<queueName>:names`) so that any process — also one
 * that never added or processed a given name — can count and find every job of this queue family.
 *
 * Finished jobs are kept for `resultTtlMs` (BullMQ `removeOnComplete/removeOnFail: { age }`) so that
 * `waitFor` in any process can still read the result. Because BullMQ ignores an add whose id still
 * exists in *any* state, `add` first removes a *finished* job with that id, atomically and only when it
 * is finished, so "same id runs again after completion" holds. Whether an add created the job is
 * decided by a marker field set with HSETNX right after the add: of several concurrent adds of one id,
 * exactly one sees `added: true`.
 */
import { Queue, type JobsOptions } from 'bullmq';
import type { JobResult } from '../types';
import type { ResolvedJobOptions } from '../common';
import { isConnectionError, type RedisBase } from './redis-base';

/**
 * KEYS: names set, job hash, completed zset, failed zset, job logs. ARGV: job name, job id.
 * Registers the name, then removes the job if (and only if) it is finished. Returns 1 if removed.
 */
const PREPARE_ADD = `
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('ZSCORE', KEYS[3], ARGV[2]) or redis.call('ZSCORE', KEYS[4], ARGV[2]) then
  redis.call('ZREM', KEYS[3], ARGV[2])
  redis.call('ZREM', KEYS[4], ARGV[2])
  redis.call('DEL', KEYS[2], KEYS[5])
  return 1
end
return 0`;

/** KEYS: job hash. Marks the job as claimed by one add; 1 for the first caller only. */
const CLAIM_ADD = `
if redis.call('EXISTS', KEYS[1]) == 1 then
  return redis.call('HSETNX', KEYS[1], 'sgAdded', '1')
end
return 0`;

/** What `lookup` found for an id: a final result, a job still in flight, or nothing. */
export type Lookup = { kind: 'finished'; result: JobResult } | { kind: 'pending' } | { kind: 'missing' };

export class JobProducer {
  private readonly queues = new Map<string, Queue>();
  /** Names this process used; merged with the Redis set so a wiped Redis does not hide them. */
  private readonly localNames = new Set<string>();

  constructor(
    private readonly base: RedisBase,
    private readonly resultTtlMs: number,
  ) {}

  private get namesKey(): string {
    return this.base.key('names');
  }

  private keepFor(): { age: number } {
    return { age: Math.max(1, Math.ceil(this.resultTtlMs / 1000)) };
  }

  /** The BullMQ queue for `name`, created on first use over the shared producer connection. */
  queue(name: string): Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      // No version check: it would be a command during BullMQ's one-time initialisation, and a Queue
      // whose initialisation failed (Redis dropped at that moment) stays broken. The workers check.
      const created = new Queue(this.base.queueName(name), {
        connection: this.base.producer,
        prefix: this.base.prefix,
        skipVersionCheck: true,
      });
      queue = created;
      // Should initialisation fail anyway, forget this Queue; the next call makes a new one.
      created.waitUntilReady().catch(() => {
        if (this.queues.get(name) === created) this.queues.delete(name);
        created.close().catch(() => undefined);
      });
      // Queues share the producer connection, whose own handler reports connection trouble once.
      queue.on('error', (err: Error) => {
        if (!isConnectionError(err)) this.base.reportError(`queue ${name}`, err);
      });
      this.queues.set(name, queue);
    }
    this.localNames.add(name);
    return queue;
  }

  async add(name: string, data: unknown, opts: ResolvedJobOptions): Promise<{ added: boolean }> {
    const queue = this.queue(name);
    const { jobId } = opts;
    const jobKey = queue.toKey(jobId);
    return this.base.guard('add', async () => {
      const redis = this.base.producer;
      await redis.eval(
        PREPARE_ADD,
        5,
        this.namesKey,
        jobKey,
        queue.keys.completed!,
        queue.keys.failed!,
        `${jobKey}:logs`,
        name,
        jobId,
      );
      const jobOpts: JobsOptions = {
        jobId,
        attempts: opts.attempts,
        backoff: { type: 'exponential', delay: opts.backoffMs },
        removeOnComplete: this.keepFor(),
        removeOnFail: this.keepFor(),
      };
      if (opts.delayMs > 0) jobOpts.delay = opts.delayMs;
      await queue.add(name, data, jobOpts);
      const claimed = await redis.eval(CLAIM_ADD, 1, jobKey);
      return { added: claimed === 1 };
    });
  }

  /** Records `name` in the shared set (best effort; add/repeat record it again). */
  async register(name: string): Promise<void> {
    this.localNames.add(name);
    await this.base.guard('register', async () => {
      await this.base.producer.sadd(this.namesKey, name);
    });
  }

  /** Every job name of this queue family: the Redis set plus the names this process used. */
  async names(): Promise<string[]> {
    const stored = await this.base.guard('names', () => this.base.producer.smembers(this.namesKey));
    return [...new Set([...stored, ...this.localNames])].sort();
  }

  async repeat(name: string, everyMs: number): Promise<void> {
    const queue = this.queue(name);
    await this.base.guard('repeat', async () => {
      await this.base.producer.sadd(this.namesKey, name);
      // One scheduler per name: upserting the same id from every replica keeps a single schedule.
      await queue.upsertJobScheduler(
        name,
        { every: everyMs },
        {
          name,
          data: {},
          opts: { attempts: 1, removeOnComplete: this.keepFor(), removeOnFail: this.keepFor() },
        },
      );
    });
  }

  async counts(): Promise<{ waiting: number; active: number; delayed: number }> {
    const names = await this.names();
    return this.base.guard('counts', async () => {
      const all = await Promise.all(
        names.map((n) => this.queue(n).getJobCounts('waiting', 'active', 'delayed')),
      );
      const total = { waiting: 0, active: 0, delayed: 0 };
      for (const c of all) {
        total.waiting += c.waiting ?? 0;
        total.active += c.active ?? 0;
        total.delayed += c.delayed ?? 0;
      }
      return total;
    });
  }

  async ping(): Promise<void> {
    await this.base.guard('ping', async () => {
      await this.base.producer.ping();
    });
  }

  /** Finds the job `jobId` among `names`: its final result, or whether it is still in flight. */
  async lookup(jobId: string, names: string[]): Promise<Lookup> {
    return this.base.guard('lookup', async () => {
      let pending = false;
      for (const name of names) {
        const queue = this.queue(name);
        const state = await queue.getJobState(jobId);
        if (state === 'completed' || state === 'failed') {
          const job = await queue.getJob(jobId);
          if (!job) continue; // removed in between
          const result: JobResult =
            state === 'completed'
              ? { id: jobId, state, result: job.returnvalue }
              : { id: jobId, state, error: job.failedReason };
          return { kind: 'finished', result };
        }
        if (state !== 'unknown') pending = true;
      }
      return pending ? { kind: 'pending' } : { kind: 'missing' };
    });
  }

  /** Removes every key of this queue family (all names, schedulers, kept results). Tests and admin only. */
  async destroy(): Promise<void> {
    const names = await this.names();
    await Promise.all(names.map((n) => this.queue(n).obliterate({ force: true })));
    await this.base.producer.del(this.namesKey);
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close().catch(() => undefined)));
    this.queues.clear();
  }
}
