/**
 * Reading a pod from the API instead of the informer's cache, for the time the pod watch is not fresh
 * (down, backing off, or silent past its bookmark bound): the answer goes into the cache as the watch
 * would have delivered it. One GET per name at a time, reused for READ_THROUGH_MS, because the launch
 * paths poll `state()` every 100 ms.
 */
import type * as K8s from '@kubernetes/client-node';
import type { KubernetesBackendLogger } from './backend-options';
import { apiMessage, statusCode } from './errors';
import type { PodCache } from './pod-cache';

const READ_THROUGH_MS = 1000;

export class ReadThrough {
  private readonly reads = new Map<string, { at: number; done: Promise<void> }>();

  constructor(
    private readonly namespace: string,
    private readonly cache: PodCache,
    private readonly log: KubernetesBackendLogger,
    /** Whether a pod with these labels is one of this backend's (its selector). */
    private readonly ours: (labels: Record<string, string>) => boolean,
  ) {}

  /** Puts the API's view of `name` into the cache; an API error leaves the cache as it is. */
  read(core: K8s.CoreV1Api, name: string): Promise<void> {
    const now = Date.now();
    const recent = this.reads.get(name);
    if (recent && now - recent.at < READ_THROUGH_MS) return recent.done;
    for (const [n, r] of this.reads) if (now - r.at >= READ_THROUGH_MS) this.reads.delete(n);
    const done = (async () => {
      try {
        const pod = await core.readNamespacedPod({ name, namespace: this.namespace });
        if (this.ours(pod.metadata?.labels ?? {})) this.cache.onPod(pod);
        else this.cache.forget(name, undefined);
      } catch (err) {
        if (statusCode(err) === 404) this.cache.forget(name, undefined);
        else this.log.debug('kubernetes read-through failed; serving the cache', { pod: name, error: apiMessage(err) });
      }
    })();
    this.reads.set(name, { at: now, done });
    return done;
  }
}
