/**
 * `JobQueue` in this process's memory, for the embedded default (no `SPAWNGATE_REDIS_URL`). Same
 * semantics as the BullMQ implementation — de-duplication by id per name while waiting, delayed or
 * active; retries with exponential backoff unless the handler throws `UnrecoverableJobError`;
 * concurrency per name; results kept for `resultTtlMs`; repeat; graceful close — minus durability:
 * jobs live only as long as the process (the start-up reconcile pass covers a restart).
 */
import { logger as defaultLogger, type Logger } from '../../logging';
import {
  assertJobName,
  resolveConcurrency,
  backoffDelay,
  DEFAULT_CLOSE_GRACE_MS,
  DEFAULT_RESULT_TTL_MS,
  errorMessage,
  isUnrecoverable,
  jsonRoundTrip,
  resolveJobOptions,
  type ResolvedJobOptions,
} from '../common';
import {
  QueueUnavailableError,
  type JobHandler,
  type JobInfo,
  type JobOptions,
  type JobQueue,
  type JobResult,
} from '../types';

export interface InProcessQueueOptions {
  logger?: Logger;
  /** How long a finished job's result stays available to `waitFor`, ms. Default 60 000. */
  resultTtlMs?: number;
}

interface Entry {
  key: string;
  id: string;
  name: string;
  data: unknown;
  opts: ResolvedJobOptions;
  attempt: number;
  addedAt: number;
  state: 'waiting' | 'delayed' | 'active';
  timer?: NodeJS.Timeout;
}

interface Registration {
  handler: JobHandler<unknown, unknown>;
  concurrency: number;
  active: number;
}

export function createInProcessQueue(options: InProcessQueueOptions = {}): JobQueue {
  return new InProcessQueue(options);
}

class InProcessQueue implements JobQueue {
  readonly kind = 'inprocess' as const;
  private readonly log: Logger;
  private readonly resultTtlMs: number;
  /** Jobs waiting, delayed or active, by `name \0 id`. */
  private readonly pending = new Map<string, Entry>();
  /** Jobs ready to run, FIFO per name (they wait here until a handler is registered). */
  private readonly ready = new Map<string, Entry[]>();
  private readonly handlers = new Map<string, Registration>();
  private readonly running = new Set<Promise<void>>();
  private readonly results = new Map<string, { result: JobResult; expiresAt: number }>();
  private readonly waiters = new Map<string, Set<(r: JobResult | undefined) => void>>();
  private readonly repeats = new Map<string, { timer: NodeJS.Timeout; last?: Entry }>();
  private closing: Promise<void> | undefined;

  constructor(options: InProcessQueueOptions) {
    this.log = options.logger ?? defaultLogger.child({ component: 'jobs' });
    this.resultTtlMs = options.resultTtlMs ?? DEFAULT_RESULT_TTL_MS;
  }

  private assertOpen(): void {
    if (this.closing) throw new QueueUnavailableError('job queue is closed');
  }

  async add<T>(name: string, data: T, opts: JobOptions): Promise<{ added: boolean }> {
    this.assertOpen();
    assertJobName(name);
    return { added: this.enqueue(name, jsonRoundTrip(data), resolveJobOptions(opts)) !== undefined };
  }

  private enqueue(name: string, data: unknown, opts: ResolvedJobOptions): Entry | undefined {
    const key = `${name}\u0000${opts.jobId}`;
    if (this.pending.has(key)) return undefined;
    // A new run of this id: the previous run's result is gone, as BullMQ removes the finished job.
    this.results.delete(opts.jobId);
    const entry: Entry = {
      key,
      id: opts.jobId,
      name,
      data,
      opts,
      attempt: 1,
      addedAt: Date.now(),
      state: 'waiting',
    };
    this.pending.set(key, entry);
    if (opts.delayMs > 0) this.delay(entry, opts.delayMs);
    else this.makeReady(entry);
    return entry;
  }

  private delay(entry: Entry, ms: number): void {
    entry.state = 'delayed';
    entry.timer = setTimeout(() => {
      entry.timer = undefined;
      this.makeReady(entry);
    }, ms);
  }

  private makeReady(entry: Entry): void {
    entry.state = 'waiting';
    let list = this.ready.get(entry.name);
    if (!list) this.ready.set(entry.name, (list = []));
    list.push(entry);
    this.pump(entry.name);
  }

  /** Starts as many ready jobs of `name` as its handler's free concurrency allows. */
  private pump(name: string): void {
    const reg = this.handlers.get(name);
    const list = this.ready.get(name);
    if (!reg || !list || this.closing) return;
    while (reg.active < reg.concurrency && list.length > 0) {
      const entry = list.shift()!;
      entry.state = 'active';
      reg.active++;
      const run: Promise<void> = this.execute(entry, reg.handler).finally(() => {
        reg.active--;
        this.running.delete(run);
        this.pump(name);
      });
      this.running.add(run);
    }
  }

  private async execute(entry: Entry, handler: JobHandler<unknown, unknown>): Promise<void> {
    const info: JobInfo<unknown> = {
      id: entry.id,
      name: entry.name,
      data: entry.data,
      attempt: entry.attempt,
      addedAt: entry.addedAt,
    };
    try {
      const result = jsonRoundTrip(await handler(info));
      this.finish(entry, { id: entry.id, state: 'completed', result });
    } catch (err) {
      const message = errorMessage(err);
      this.log.warn('job attempt failed', {
        name: entry.name,
        jobId: entry.id,
        attempt: entry.attempt,
        error: message,
      });
      if (this.closing) {
        this.pending.delete(entry.key); // no retries after close; the job is dropped
      } else if (!isUnrecoverable(err) && entry.attempt < entry.opts.attempts) {
        const wait = backoffDelay(entry.opts.backoffMs, entry.attempt);
        entry.attempt++;
        if (wait > 0) this.delay(entry, wait);
        else this.makeReady(entry);
      } else {
        this.finish(entry, { id: entry.id, state: 'failed', error: message });
      }
    }
  }

  private finish(entry: Entry, result: JobResult): void {
    this.pending.delete(entry.key);
    const now = Date.now();
    for (const [id, r] of this.results) if (r.expiresAt <= now) this.results.delete(id);
    this.results.set(entry.id, { result, expiresAt: now + this.resultTtlMs });
    const set = this.waiters.get(entry.id);
    if (set) for (const notify of [...set]) notify(result);
  }

  process<T, R>(name: string, handler: JobHandler<T, R>, opts: { concurrency?: number } = {}): void {
    if (this.closing) throw new Error('job queue is closed');
    assertJobName(name);
    const concurrency = resolveConcurrency(opts);
    if (this.handlers.has(name)) throw new Error(`a handler for jobs "${name}" is already registered`);
    this.handlers.set(name, { handler: handler as JobHandler<unknown, unknown>, concurrency, active: 0 });
    this.pump(name);
  }

  async waitFor<R>(jobId: string, timeoutMs: number): Promise<JobResult<R> | undefined> {
    this.assertOpen();
    const inFlight = [...this.pending.values()].some((e) => e.id === jobId);
    const kept = this.results.get(jobId);
    if (!inFlight && kept && kept.expiresAt > Date.now()) return kept.result as JobResult<R>;
    return new Promise((resolve) => {
      let set = this.waiters.get(jobId);
      if (!set) this.waiters.set(jobId, (set = new Set()));
      const notify = (result: JobResult | undefined) => {
        clearTimeout(timer);
        set.delete(notify);
        if (set.size === 0 && this.waiters.get(jobId) === set) this.waiters.delete(jobId);
        resolve(result as JobResult<R> | undefined);
      };
      const timer = setTimeout(() => notify(undefined), Math.max(0, timeoutMs));
      set.add(notify);
    });
  }

  async repeat(name: string, everyMs: number): Promise<void> {
    this.assertOpen();
    assertJobName(name);
    if (!Number.isFinite(everyMs) || everyMs < 1) throw new Error('everyMs must be >= 1');
    const previous = this.repeats.get(name);
    if (previous) clearInterval(previous.timer);
    const schedule: { timer: NodeJS.Timeout; last?: Entry } = {
      timer: undefined as unknown as NodeJS.Timeout,
    };
    // Like a BullMQ job scheduler: at most one run that has not started yet; the first one at once.
    const tick = () => {
      if (this.closing) return;
      const last = schedule.last;
      if (last && this.pending.get(last.key) === last && last.state !== 'active') return;
      schedule.last = this.enqueue(
        name,
        {},
        resolveJobOptions({ jobId: `repeat:${name}:${Date.now()}`, attempts: 1 }),
      );
    };
    schedule.last = previous?.last;
    schedule.timer = setInterval(tick, Math.round(everyMs));
    schedule.timer.unref();
    this.repeats.set(name, schedule);
    tick();
  }

  async counts(): Promise<{ waiting: number; active: number; delayed: number }> {
    this.assertOpen();
    const counts = { waiting: 0, active: 0, delayed: 0 };
    for (const entry of this.pending.values()) counts[entry.state]++;
    return counts;
  }

  async ping(): Promise<void> {
    this.assertOpen();
  }

  close(graceMs: number = DEFAULT_CLOSE_GRACE_MS): Promise<void> {
    this.closing ??= (async () => {
      for (const { timer } of this.repeats.values()) clearInterval(timer);
      this.repeats.clear();
      // Jobs not yet started are dropped (in memory only); pending waitFor calls resolve undefined.
      for (const entry of this.pending.values()) {
        if (entry.state !== 'active') {
          clearTimeout(entry.timer);
          this.pending.delete(entry.key);
        }
      }
      this.ready.clear();
      for (const set of [...this.waiters.values()]) for (const notify of [...set]) notify(undefined);
      if (this.running.size > 0) {
        let timer: NodeJS.Timeout | undefined;
        const finished = await Promise.race([
          Promise.allSettled([...this.running]).then(() => true),
          new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, graceMs)))),
        ]);
        clearTimeout(timer);
        if (!finished) {
          this.log.warn('closing job queue: active jobs still running after the grace period', {
            jobs: this.running.size,
            graceMs,
          });
        }
      }
    })();
    return this.closing;
  }
}
