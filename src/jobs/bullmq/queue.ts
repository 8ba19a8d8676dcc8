/**
 * `JobQueue` on BullMQ and Redis, for horizontally scaled deployments (`SPAWNGATE_REDIS_URL`). Composes
 * the producer, the workers and the event listener (./bullmq/) over one base that owns the Redis
 * connections. Semantics match the in-process queue; see ./types.ts and the shared contract suite.
 *
 * Layout in Redis: one BullMQ queue per job name, `<prefix>:<queueName>.<jobName>:…`, plus a set of job
 * names `<prefix>:<queueName>:names`. Job ids are unique per name; give jobs of different names
 * different ids (e.g. `launch:<kernel>`), since `waitFor` looks an id up across all names.
 */
import { logger as defaultLogger, type Logger } from '../../logging';
import { assertJobName, resolveConcurrency, DEFAULT_CLOSE_GRACE_MS, DEFAULT_RESULT_TTL_MS, resolveJobOptions } from '../common';
import {
  QueueUnavailableError,
  type JobHandler,
  type JobOptions,
  type JobQueue,
  type JobResult,
} from '../types';
import { JobEvents } from './events';
import { JobProducer } from './producer';
import { RedisBase } from './redis-base';
import { JobWorkers } from './workers';

export interface BullmqQueueOptions {
  /** `redis://` or `rediss://` URL. */
  redisUrl: string;
  /** Prefix of every Redis key (BullMQ `prefix`), e.g. `spawngate`. Use `{name}` for Redis Cluster. */
  prefix: string;
  /** Name of this queue family; BullMQ queues are `<queueName>.<jobName>`. Default `jobs`. */
  queueName?: string;
  logger?: Logger;
  /** How long finished jobs (and so their results for `waitFor`) are kept, ms. Default 60 000. */
  resultTtlMs?: number;
  /** Budget of one producer call (add, counts, ping, …) before QueueUnavailableError, ms. Default 2 000. */
  requestTimeoutMs?: number;
  /** Worker lock duration, ms; a crashed worker's job is retried after about this long. Default 30 000. */
  lockDurationMs?: number;
  /** Interval of the stalled-job check that recovers crashed workers' jobs, ms. Default 30 000. */
  stalledIntervalMs?: number;
  /** Upper bound of the reconnect back-off of workers and listeners, ms. Default 2 000. */
  reconnectMaxDelayMs?: number;
  /** How often `waitFor` re-reads the job's state besides listening for events, ms. Default 1 000. */
  pollIntervalMs?: number;
}

/** The BullMQ queue: the `JobQueue` contract plus `destroy` for tests and decommissioning. */
export interface BullmqJobQueue extends JobQueue {
  readonly kind: 'bullmq';
  /**
   * Removes every Redis key of this queue family: jobs of all names (also active ones), schedulers and
   * kept results. Not part of the contract; for tests and decommissioning. Workers elsewhere should be
   * closed first.
   */
  destroy(): Promise<void>;
}

export function createBullmqQueue(options: BullmqQueueOptions): BullmqJobQueue {
  if (!/^rediss?:\/\//.test(options.redisUrl))
    throw new Error('redisUrl must be a redis:// or rediss:// URL');
  if (!options.prefix || options.prefix.includes(' '))
    throw new Error('prefix must be a non-empty key prefix');
  const queueName = options.queueName ?? 'jobs';
  if (!/^[A-Za-z0-9_-]+$/.test(queueName))
    throw new Error('queueName may contain letters, digits, _ and - only');
  return new BullmqQueue({ ...options, queueName });
}

class BullmqQueue implements BullmqJobQueue {
  readonly kind = 'bullmq' as const;
  private readonly base: RedisBase;
  private readonly producer: JobProducer;
  private readonly workers: JobWorkers;
  private readonly events: JobEvents;
  private readonly pollIntervalMs: number;
  /** Pending `waitFor` calls, resolved with `undefined` by `close`. */
  private readonly waits = new Set<(result: JobResult | undefined) => void>();
  private closing: Promise<void> | undefined;

  constructor(options: BullmqQueueOptions & { queueName: string }) {
    const logger = options.logger ?? defaultLogger.child({ component: 'jobs' });
    this.base = new RedisBase({
      redisUrl: options.redisUrl,
      prefix: options.prefix,
      queueName: options.queueName,
      logger,
      requestTimeoutMs: options.requestTimeoutMs ?? 2_000,
      reconnectMaxDelayMs: options.reconnectMaxDelayMs ?? 2_000,
    });
    this.producer = new JobProducer(this.base, options.resultTtlMs ?? DEFAULT_RESULT_TTL_MS);
    this.workers = new JobWorkers(this.base, {
      lockDurationMs: options.lockDurationMs ?? 30_000,
      stalledIntervalMs: options.stalledIntervalMs ?? 30_000,
      retryDelayMs: Math.max(1_000, options.reconnectMaxDelayMs ?? 2_000),
    });
    this.events = new JobEvents(this.base);
    this.pollIntervalMs = options.pollIntervalMs ?? 1_000;
  }

  private assertOpen(): void {
    if (this.closing) throw new QueueUnavailableError('job queue is closed');
  }

  async add<T>(name: string, data: T, opts: JobOptions): Promise<{ added: boolean }> {
    this.assertOpen();
    assertJobName(name);
    return this.producer.add(name, data, resolveJobOptions(opts));
  }

  process<T, R>(name: string, handler: JobHandler<T, R>, opts: { concurrency?: number } = {}): void {
    if (this.closing) throw new Error('job queue is closed');
    assertJobName(name);
    const concurrency = resolveConcurrency(opts);
    if (this.workers.has(name)) throw new Error(`a handler for jobs "${name}" is already registered`);
    this.workers.start(name, handler as JobHandler<unknown, unknown>, concurrency);
    this.producer.register(name).catch((err: unknown) => this.base.reportError('register', err));
  }

  async waitFor<R>(jobId: string, timeoutMs: number): Promise<JobResult<R> | undefined> {
    this.assertOpen();
    // The first look-up is awaited so that an unreachable Redis is reported, not waited out.
    const names = await this.producer.names();
    this.events.ensure(names);
    return new Promise<JobResult<R> | undefined>((resolve) => {
      let done = false;
      let poll: NodeJS.Timeout | undefined;
      const finish = (result: JobResult | undefined) => {
        if (done) return;
        done = true;
        clearTimeout(deadline);
        clearTimeout(poll);
        unsubscribe();
        this.waits.delete(finish);
        resolve(result as JobResult<R> | undefined);
      };
      const unsubscribe = this.events.subscribe(jobId, finish);
      const deadline = setTimeout(() => finish(undefined), Math.max(0, timeoutMs));
      this.waits.add(finish);
      const check = async (known: string[] | undefined) => {
        try {
          const current = known ?? (await this.producer.names());
          this.events.ensure(current);
          const found = await this.producer.lookup(jobId, current);
          if (found.kind === 'finished') finish(found.result);
        } catch (err) {
          // Redis trouble while waiting: keep waiting until the deadline; the outage is logged elsewhere.
          if (!done) this.base.reportError('waitFor', err);
        }
        if (!done) poll = setTimeout(() => void check(undefined), this.pollIntervalMs);
      };
      void check(names);
    });
  }

  async repeat(name: string, everyMs: number): Promise<void> {
    this.assertOpen();
    assertJobName(name);
    if (!Number.isFinite(everyMs) || everyMs < 1) throw new Error('everyMs must be >= 1');
    await this.producer.repeat(name, Math.round(everyMs));
  }

  async counts(): Promise<{ waiting: number; active: number; delayed: number }> {
    this.assertOpen();
    return this.producer.counts();
  }

  async ping(): Promise<void> {
    this.assertOpen();
    await this.producer.ping();
  }

  async destroy(): Promise<void> {
    this.assertOpen();
    await this.producer.destroy();
  }

  close(graceMs: number = DEFAULT_CLOSE_GRACE_MS): Promise<void> {
    this.closing ??= (async () => {
      for (const finish of [...this.waits]) finish(undefined);
      await this.workers.close(Math.max(0, graceMs));
      await this.events.close();
      await this.producer.close();
      await this.base.close();
    })();
    return this.closing;
  }
}
