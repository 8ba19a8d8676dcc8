/**
 * Deleting a pod and waiting until it is gone: one DELETE with the pod's uid as precondition (a newer
 * pod of the same name is never deleted by mistake), then resolve on the informer's delete — with a
 * GET after a few quiet seconds, for a watch that is down or a pod the cache never held.
 */
import type * as K8s from '@kubernetes/client-node';
import { backendError, statusCode } from './errors';
import type { PodCache } from './pod-cache';

export async function deletePodAndWait(
  core: K8s.CoreV1Api,
  cache: PodCache,
  pod: { namespace: string; name: string; uid: string | undefined },
  graceSeconds: number,
  cachedAtStart: boolean,
): Promise<void> {
  const { namespace, name, uid } = pod;
  try {
    await core.deleteNamespacedPod({
      name,
      namespace,
      gracePeriodSeconds: graceSeconds,
      body: { gracePeriodSeconds: graceSeconds, ...(uid ? { preconditions: { uid } } : {}) },
    });
  } catch (err) {
    const code = statusCode(err);
    if (code === 404 || code === 409) return cache.forget(name, uid); // gone, or a newer pod of that name
    throw backendError(`deleting pod ${name}`, err);
  }
  let seen = cachedAtStart;
  for (;;) {
    const cached = cache.get(name);
    if (cached && cached.uid !== uid) return; // a newer pod of that name
    if (cached) seen = true;
    else if (seen) return; // it left the cache: deleted
    // News about a pod the cache holds: look again; anything else (quiet for 3 s, or a delete of a pod
    // the cache never held): ask the API.
    if ((await cache.changed(name, 3000)) && (seen || cache.has(name))) continue;
    try {
      const current = await core.readNamespacedPod({ name, namespace });
      if (current.metadata?.uid !== uid) return cache.forget(name, uid);
    } catch (err) {
      if (statusCode(err) === 404) return cache.forget(name, uid);
    }
  }
}
