/**
 * Reading a Pod (and its Events) as spawngate's `WorkloadState` and progress messages. Pure.
 *
 * Failure reasons are reported as soon as the pod shows them, never at a timeout:
 * - terminated containers: `OOMKilled`, or "exited with status N";
 * - `status.reason` Evicted (and other pod-level reasons) on a Failed pod;
 * - image problems while Pending (`ErrImagePull`, `ImagePullBackOff`, `InvalidImageName`,
 *   `CreateContainerConfigError`…): the pod would wait forever, so it counts as `exited` — except a
 *   Secret not found (yet), which the kubelet retries;
 * - `PodScheduled=False` with reason `Unschedulable`: `exited` unless the cluster autoscales
 *   (`failUnschedulable: false`), in which case it stays `pending` with the reason.
 */
import type { CoreV1Event, V1Pod } from '@kubernetes/client-node';
import type { WorkloadState } from '../types';
import { originalLabels } from './manifests';

const FATAL_WAITING = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'InvalidImageName',
  'ErrImageNeverPull',
  'CreateContainerConfigError',
  'CreateContainerError',
  'RunContainerError',
  'CrashLoopBackOff',
]);

export interface PodStateOptions {
  failUnschedulable: boolean;
}

function withMessage(reason: string, message?: string): string {
  return message ? `${reason}: ${message}` : reason;
}

export function podToState(pod: V1Pod, opts: PodStateOptions): WorkloadState {
  const meta = pod.metadata ?? {};
  const status = pod.status ?? {};
  const base: WorkloadState = {
    name: meta.name ?? '',
    phase: 'pending',
    labels: originalLabels(pod),
    ref: { uid: meta.uid, namespace: meta.namespace, pod: meta.name },
  };
  const container = status.containerStatuses?.[0];
  const terminated = container?.state?.terminated;
  if (status.phase === 'Succeeded' || status.phase === 'Failed' || terminated) {
    if (status.reason) {
      return { ...base, phase: 'exited', reason: withMessage(status.reason, status.message), ...(terminated ? { exitCode: terminated.exitCode } : {}) };
    }
    if (terminated) {
      const reason =
        terminated.reason === 'OOMKilled'
          ? 'OOMKilled'
          : `exited with status ${terminated.exitCode}${terminated.signal ? ` (signal ${terminated.signal})` : ''}`;
      return { ...base, phase: 'exited', exitCode: terminated.exitCode, reason };
    }
    return { ...base, phase: 'exited', reason: status.phase === 'Succeeded' ? 'completed' : 'failed' };
  }
  const waiting = container?.state?.waiting;
  // A Secret referenced by env that is not there yet (ours is created right after the pod): the
  // kubelet retries, so the pod is still starting.
  const secretPending = waiting?.reason === 'CreateContainerConfigError' && /^secret ".*" not found$/.test(waiting.message ?? '');
  if (waiting?.reason && FATAL_WAITING.has(waiting.reason) && !secretPending) {
    return { ...base, phase: 'exited', reason: withMessage(waiting.reason, waiting.message) };
  }
  const scheduled = status.conditions?.find((c) => c.type === 'PodScheduled');
  if (scheduled?.status === 'False' && scheduled.reason === 'Unschedulable') {
    const reason = withMessage('Unschedulable', scheduled.message);
    return opts.failUnschedulable ? { ...base, phase: 'exited', reason } : { ...base, reason };
  }
  const ready = status.conditions?.find((c) => c.type === 'Ready')?.status === 'True';
  if (status.phase === 'Running' && ready && status.podIP) {
    const ports: Record<string, number> = {};
    const specPorts = pod.spec?.containers?.[0]?.ports ?? [];
    specPorts.forEach((p, i) => {
      ports[i === 0 ? 'default' : (p.name ?? `port${i}`)] = p.containerPort;
      if (p.name) ports[p.name] = p.containerPort;
    });
    return { ...base, phase: 'running', host: status.podIP, address: status.podIP, ports };
  }
  return base;
}

/** The pod events that become progress messages (reason → how it reads). */
const PROGRESS_REASONS = new Set([
  'Scheduled',
  'FailedScheduling',
  'Pulling',
  'Pulled',
  'Created',
  'Started',
  'BackOff',
  'Failed',
  'FailedMount',
  'Killing',
  'Evicted',
  'OOMKilling',
  'TriggeredScaleUp',
  'NotTriggerScaleUp',
]);

/** A progress message for an event about one of our pods, or undefined for events not worth showing. */
export function eventToProgress(event: CoreV1Event): { pod: string; message: string } | undefined {
  const reason = event.reason ?? '';
  if (event.involvedObject?.kind !== 'Pod' || !event.involvedObject.name || !PROGRESS_REASONS.has(reason)) {
    return undefined;
  }
  const prefix = event.type === 'Warning' ? `${reason} (warning)` : reason;
  return { pod: event.involvedObject.name, message: withMessage(prefix, event.message) };
}

/** True when two states differ in what a watcher cares about. */
export function stateChanged(a: WorkloadState | undefined, b: WorkloadState): boolean {
  return !a || a.phase !== b.phase || a.host !== b.host || a.reason !== b.reason || a.exitCode !== b.exitCode;
}
