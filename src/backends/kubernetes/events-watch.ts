/**
 * One watch of a namespace's pod events (involvedObject.kind=Pod, no cache) turned into progress
 * messages ("Pulling image …", "Scheduled …"). Old events are not replayed: the watch starts at the
 * collection's current resourceVersion, resumes from the last one seen, and starts afresh after 410.
 */
import type * as K8s from '@kubernetes/client-node';
import type { ClientNode } from './client';
import { apiMessage, statusCode } from './errors';
import { eventToProgress } from './pod-state';

export interface EventsWatchOptions {
  k8s: ClientNode;
  kc: K8s.KubeConfig;
  core: K8s.CoreV1Api;
  namespace: string;
  rewatchDelayMs: number;
  /** Runs `fn` after `ms` unless the backend closed meanwhile. */
  later: (ms: number, fn: () => void) => void;
  closed: () => boolean;
  log: { warn: (message: string, meta?: Record<string, unknown>) => unknown };
  /** A progress message about pod `pod`. */
  onProgress: (pod: string, message: string) => void;
}

export class PodEventsWatch {
  private rv: string | undefined;
  private request: AbortController | undefined;

  constructor(private readonly o: EventsWatchOptions) {}

  async start(): Promise<void> {
    const o = this.o;
    if (o.closed()) return;
    const fieldSelector = 'involvedObject.kind=Pod';
    try {
      if (!this.rv) {
        // Only the collection's resourceVersion is wanted: old events are not replayed as progress.
        const list = await o.core.listNamespacedEvent({ namespace: o.namespace, fieldSelector, limit: 1 });
        this.rv = list.metadata?.resourceVersion;
      }
      const watch = new o.k8s.Watch(o.kc);
      this.request = await watch.watch(
        `/api/v1/namespaces/${encodeURIComponent(o.namespace)}/events`,
        { fieldSelector, resourceVersion: this.rv, allowWatchBookmarks: true },
        (type: string, obj: { code?: number; metadata?: { resourceVersion?: string } } & K8s.CoreV1Event) => {
          if (type === 'ERROR') {
            if (obj.code === 410) this.rv = undefined;
            return;
          }
          if (obj.metadata?.resourceVersion) this.rv = obj.metadata.resourceVersion;
          if (type !== 'ADDED' && type !== 'MODIFIED') return;
          const progress = eventToProgress(obj);
          if (progress) o.onProgress(progress.pod, progress.message);
        },
        (err: unknown) => {
          if (o.closed()) return;
          if (statusCode(err) === 410) this.rv = undefined;
          o.later(err && statusCode(err) !== 410 ? o.rewatchDelayMs : 0, () => void this.start());
        },
      );
    } catch (err) {
      if (o.closed()) return;
      o.log.warn('kubernetes events watch failed; restarting', { error: apiMessage(err), namespace: o.namespace });
      o.later(o.rewatchDelayMs, () => void this.start());
    }
  }

  stop(): void {
    this.request?.abort();
  }
}
