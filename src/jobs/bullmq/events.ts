/**
 * The event-listener side of the BullMQ implementation: one BullMQ `QueueEvents` per job name (each a
 * blocking XREAD on that queue's event stream, on the base's never-give-up connection settings),
 * started lazily by the first `waitFor`, dispatching final `completed` / `failed` events to whoever
 * waits for that job id. Retries are not final: BullMQ emits `failed` only after the last attempt.
 *
 * Events are the fast path only; `waitFor` also polls the job's state, which covers a listener that is
 * still connecting or an event that was emitted before the listener started reading.
 */
import { QueueEvents } from 'bullmq';
import type { JobResult } from '../types';
import type { RedisBase } from './redis-base';

type Listener = (result: JobResult) => void;

export class JobEvents {
  private readonly listeners = new Map<string, QueueEvents>();
  private readonly waiters = new Map<string, Set<Listener>>();
  private closed = false;

  constructor(private readonly base: RedisBase) {}

  /** Makes sure a listener runs for each of `names` (idempotent, does not wait for connections). */
  ensure(names: Iterable<string>): void {
    if (this.closed) return;
    for (const name of names) {
      if (this.listeners.has(name)) continue;
      const events = new QueueEvents(this.base.queueName(name), {
        connection: this.base.blockingConnection(),
        prefix: this.base.prefix,
      });
      events.on('error', (err: Error) => this.base.reportError(`events ${name}`, err));
      events.on('completed', ({ jobId, returnvalue }: { jobId: string; returnvalue: unknown }) =>
        this.dispatch({ id: jobId, state: 'completed', result: returnvalue }),
      );
      events.on('failed', ({ jobId, failedReason }: { jobId: string; failedReason: string }) =>
        this.dispatch({ id: jobId, state: 'failed', error: failedReason }),
      );
      this.listeners.set(name, events);
    }
  }

  /** Calls `listener` with the final result of `jobId`; returns the unsubscribe function. */
  subscribe(jobId: string, listener: Listener): () => void {
    let set = this.waiters.get(jobId);
    if (!set) this.waiters.set(jobId, (set = new Set()));
    set.add(listener);
    return () => {
      const current = this.waiters.get(jobId);
      current?.delete(listener);
      if (current?.size === 0) this.waiters.delete(jobId);
    };
  }

  private dispatch(result: JobResult): void {
    const set = this.waiters.get(result.id);
    if (!set) return;
    for (const listener of [...set]) listener(result);
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.listeners.values()];
    this.listeners.clear();
    this.waiters.clear();
    await Promise.all(
      all.map((events) =>
        Promise.race([
          events.close().catch(() => undefined),
          new Promise((r) => setTimeout(r, 2_000).unref()),
        ]),
      ),
    );
  }
}
