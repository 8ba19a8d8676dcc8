/**
 * Deleting a pod and waiting until it is gone: one DELETE with a grace period and the pod's uid as
 * precondition (a newer pod of the same name is never deleted by mistake), then resolve on the
 * informer's delete — with a GET after a few quiet seconds, for a watch that is down or a pod the cache
 * never held.
 *
 * `gracePeriodSeconds: 0` is a force delete: the API server removes the object at once, whatever the
 * kubelet is doing, so the name is free while the old container may still run (and a pod of the same
 * name could start beside it). It is therefore never the first request: the first DELETE asks for at
 * least 1 s. Only once the grace has passed AND the kubelet has confirmed the end (every container
 * reported terminated, or the pod never reached a node) is a pod that still lingers force-deleted. A
 * pod whose kubelet never confirms (an unreachable node) is waited for, with a warning, as before.
 */
import type * as K8s from '@kubernetes/client-node';
import type { KubernetesBackendLogger } from './backend-options';
import { backendError, statusCode } from './errors';
import type { PodCache } from './pod-cache';

/** After the grace, how long the kubelet gets to report and remove the pod before we look ourselves. */
const AFTER_GRACE_MS = 2000;
const QUIET_MS = 3000;

/** Whether the kubelet has confirmed that nothing of this pod runs any more. */
export function kubeletConfirmedEnd(pod: K8s.V1Pod): boolean {
  if (!pod.spec?.nodeName) return true; // never scheduled: nothing ever ran
  const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  const phase = pod.status?.phase;
  if (phase === 'Succeeded' || phase === 'Failed') return statuses.every((c) => !c.state?.running);
  return statuses.length > 0 && statuses.every((c) => !!c.state?.terminated || (!!c.state?.waiting && !c.lastState?.running));
}

export interface DeleteTarget {
  namespace: string;
  name: string;
  uid: string | undefined;
}

async function del(core: K8s.CoreV1Api, t: DeleteTarget, graceSeconds: number): Promise<'sent' | 'gone'> {
  try {
    await core.deleteNamespacedPod({
      name: t.name,
      namespace: t.namespace,
      gracePeriodSeconds: graceSeconds,
      body: { gracePeriodSeconds: graceSeconds, ...(t.uid ? { preconditions: { uid: t.uid } } : {}) },
    });
    return 'sent';
  } catch (err) {
    const code = statusCode(err);
    if (code === 404 || code === 409) return 'gone'; // gone, or a newer pod of that name
    throw backendError(`deleting pod ${t.name}`, err);
  }
}

export async function deletePodAndWait(
  core: K8s.CoreV1Api,
  cache: PodCache,
  target: DeleteTarget,
  graceSeconds: number,
  cachedAtStart: boolean,
  log?: KubernetesBackendLogger,
): Promise<void> {
  const { namespace, name, uid } = target;
  const grace = Math.max(1, Math.round(graceSeconds));
  if ((await del(core, target, grace)) === 'gone') return cache.forget(name, uid);
  const forceAfter = Date.now() + grace * 1000 + AFTER_GRACE_MS;
  let forced = false;
  let warned = false;
  let seen = cachedAtStart;
  for (;;) {
    const cached = cache.get(name);
    if (cached && cached.uid !== uid) return; // a newer pod of that name
    if (cached) seen = true;
    else if (seen) return; // it left the cache: deleted
    // News about a pod the cache holds: look again; anything else (quiet for a while, a delete of a pod
    // the cache never held, the grace over): ask the API.
    if (forced || Date.now() < forceAfter) {
      const wait = forced ? QUIET_MS : Math.max(50, Math.min(QUIET_MS, forceAfter - Date.now()));
      if ((await cache.changed(name, wait)) && (seen || cache.has(name))) continue;
    }
    let current: K8s.V1Pod;
    try {
      current = await core.readNamespacedPod({ name, namespace });
    } catch (err) {
      if (statusCode(err) === 404) return cache.forget(name, uid);
      continue;
    }
    if (current.metadata?.uid !== uid) return cache.forget(name, uid);
    if (forced || Date.now() < forceAfter) continue;
    if (kubeletConfirmedEnd(current)) {
      forced = true;
      log?.info('kubernetes pod terminated but not removed after its grace; force-deleting it', { pod: name, namespace });
      if ((await del(core, target, 0)) === 'gone') return cache.forget(name, uid);
    } else if (!warned) {
      warned = true;
      log?.warn('kubernetes pod still running after its grace period; its kubelet has not confirmed the end, so it is not force-deleted', { pod: name, namespace });
    }
    if (!forced) await cache.changed(name, QUIET_MS);
  }
}
