/**
 * One watch of a namespace's pod events turned into progress messages ("Pulling image …",
 * "Scheduled …"). Old events are not replayed: the watch starts at the collection's current
 * resourceVersion and resumes from the last one seen.
 *
 * A real API server keeps no watch cache for events, so it sends no bookmarks on this watch: the last
 * resourceVersion seen is that of the last event, which may be older than the compaction window when
 * the namespace was quiet. Resuming after the server's timeout then gets 410 Gone, and the watch starts
 * afresh from the collection's current version (events in between are lost: they are progress only).
 * Without bookmarks there is no stall watchdog either; the watch's own short timeout (plus a client-side
 * deadline) bounds how long a silently dead connection goes unnoticed.
 *
 * Narrowed by `fieldSelector=involvedObject.kind=Pod`. Events cannot be selected by the pod's labels
 * (events carry none, and field selectors on events know no labels), so the watch still sees the events
 * of every pod in the namespace, not only spawngate's; they are dropped here unless they name a pod of
 * ours or one being launched.
 */
import type * as K8s from '@kubernetes/client-node';
import type { ClientNode } from './client';
import { apiMessage, statusCode } from './errors';
import { eventToProgress } from './pod-state';
import { Backoff, retryAfterMs, WatchGuard, type WatchGuardOptions } from './watch-guard';

export interface EventsWatchOptions {
  k8s: ClientNode;
  kc: K8s.KubeConfig;
  core: K8s.CoreV1Api;
  namespace: string;
  /** The guard's timing (no stall watchdog: events have no bookmarks). */
  timing: Omit<WatchGuardOptions, 'watch' | 'backoff' | 'stallMs'>;
  backoff: { initialMs: number; maxMs: number };
  /** Runs `fn` after `ms` unless the backend closed meanwhile. */
  later: (ms: number, fn: () => void) => void;
  closed: () => boolean;
  log: { warn: (message: string, meta?: Record<string, unknown>) => unknown };
  /** A progress message about pod `pod`. */
  onProgress: (pod: string, message: string) => void;
}

const FIELD_SELECTOR = 'involvedObject.kind=Pod';

export class PodEventsWatch {
  private rv: string | undefined;
  private request: AbortController | undefined;
  /** 410s in a row without an event between: the first relists at once, the next ones back off. */
  private gone = 0;
  private readonly backoff: Backoff;
  private readonly guard: WatchGuard;

  constructor(private readonly o: EventsWatchOptions) {
    this.backoff = new Backoff(o.backoff);
    this.guard = new WatchGuard({ ...o.timing, stallMs: 0, watch: new o.k8s.Watch(o.kc), backoff: this.backoff });
  }

  async start(): Promise<void> {
    const o = this.o;
    if (o.closed()) return;
    try {
      if (!this.rv) {
        // Only the collection's resourceVersion is wanted: old events are not replayed as progress.
        const list = await o.core.listNamespacedEvent({ namespace: o.namespace, fieldSelector: FIELD_SELECTOR, limit: 1 });
        this.rv = list.metadata?.resourceVersion;
      }
      this.request = await this.guard.watch(
        `/api/v1/namespaces/${encodeURIComponent(o.namespace)}/events`,
        { fieldSelector: FIELD_SELECTOR, resourceVersion: this.rv },
        (type, raw) => {
          if (type === 'ERROR') return; // the guard reports it to the done callback
          const obj = raw as K8s.CoreV1Event;
          if (obj.metadata?.resourceVersion) this.rv = obj.metadata.resourceVersion;
          this.gone = 0;
          if (type !== 'ADDED' && type !== 'MODIFIED') return;
          const progress = eventToProgress(obj);
          if (progress) o.onProgress(progress.pod, progress.message);
        },
        (err) => this.ended(err),
      );
    } catch (err) {
      if (o.closed()) return;
      o.log.warn('kubernetes events list failed; retrying', { error: apiMessage(err), namespace: o.namespace });
      o.later(this.backoff.next(retryAfterMs(err)), () => void this.start());
    }
  }

  /** The server's timeout: resume at once. 410: start afresh (at once the first time). Anything else: back off. */
  private ended(err: unknown): void {
    const o = this.o;
    if (o.closed()) return;
    if (!err) return o.later(0, () => void this.start());
    if (statusCode(err) === 410) {
      this.rv = undefined;
      return o.later(this.gone++ ? this.backoff.next() : 0, () => void this.start());
    }
    const delay = this.backoff.next();
    o.log.warn('kubernetes events watch ended; restarting', { error: apiMessage(err), namespace: o.namespace, delayMs: delay });
    o.later(delay, () => void this.start());
  }

  stop(): void {
    this.request?.abort();
  }
}
