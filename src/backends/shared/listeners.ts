/**
 * Fan-out of workload events to subscribers. A listener that throws is logged and skipped: it must not
 * stop the others, nor break the informer or event-stream callback that is delivering the event.
 */
import type { WorkloadEvent } from '../types';

type Listener = (e: WorkloadEvent) => void;

export class ListenerSet {
  private readonly listeners = new Set<Listener>();

  constructor(private readonly log: { warn: (message: string, meta?: Record<string, unknown>) => unknown }) {}

  get size(): number {
    return this.listeners.size;
  }

  /** Adds `listener`; returns its unsubscribe function (idempotent). */
  add(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  emit(e: WorkloadEvent): void {
    for (const listener of [...this.listeners]) deliver(listener, e, this.log);
  }

  clear(): void {
    this.listeners.clear();
  }
}

/** Calls one listener, logging (never rethrowing) what it throws. */
export function deliver(listener: Listener, e: WorkloadEvent, log: { warn: (message: string, meta?: Record<string, unknown>) => unknown }): void {
  try {
    listener(e);
  } catch (err) {
    log.warn('workload event listener threw', { name: e.name, error: err });
  }
}
