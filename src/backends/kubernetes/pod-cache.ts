/**
 * The informer's view as the backend reads it: a small map name → WorkloadState of our pods (from the
 * informer's add/update/delete), tombstones of deleted pods (their last reason, bounded), and waiters
 * that resume when a pod changes (delete-and-wait uses them). Changes are reported to `onChange`.
 */
import type * as K8s from '@kubernetes/client-node';
import type { WorkloadState } from '../types';
import { podToState, stateChanged } from './pod-state';

export interface CachedPod {
  uid: string | undefined;
  state: WorkloadState;
  /** When this entry last changed (ms since epoch). */
  at: number;
  /** Whether the pod was being deleted (deletionTimestamp set) when last seen. */
  terminating?: boolean;
}

export interface PodCacheOptions {
  failUnschedulable: boolean;
  /** How many deleted pods keep their last state. */
  tombstones: number;
  onChange: (name: string, state: WorkloadState) => void;
}

export class PodCache {
  private readonly states = new Map<string, CachedPod>();
  private readonly gone = new Map<string, WorkloadState>();
  private readonly waiters = new Map<string, Set<() => void>>();
  /** Names spawngate is deleting right now (their deletion is reported as ours). */
  readonly stopping = new Set<string>();

  constructor(private readonly o: PodCacheOptions) {}

  get(name: string): CachedPod | undefined {
    return this.states.get(name);
  }

  has(name: string): boolean {
    return this.states.has(name);
  }

  /** A live pod's state, else a deleted one's last state, else undefined. */
  lookup(name: string): WorkloadState | undefined {
    return this.states.get(name)?.state ?? this.gone.get(name);
  }

  onPod(pod: K8s.V1Pod): void {
    const name = pod.metadata?.name;
    if (!name) return;
    let state = podToState(pod, { failUnschedulable: this.o.failUnschedulable });
    // The kubelet reports a deleted pod's containers terminated (137/143) before the pod goes: that
    // exit is the delete's doing, and is reported as such.
    if (pod.metadata?.deletionTimestamp && state.phase === 'exited') state = { ...state, reason: this.deletionReason(name) };
    const prev = this.states.get(name);
    this.gone.delete(name);
    this.states.set(name, { uid: pod.metadata?.uid, state, at: Date.now(), ...(pod.metadata?.deletionTimestamp ? { terminating: true } : {}) });
    if (stateChanged(prev?.state, state)) this.o.onChange(name, state);
    this.notify(name);
  }

  onPodDeleted(pod: K8s.V1Pod): void {
    const name = pod.metadata?.name;
    if (!name) return;
    const prev = this.states.get(name);
    if (!prev || (prev.uid && pod.metadata?.uid && prev.uid !== pod.metadata.uid)) {
      this.notify(name); // a stop() waiting on a pod its cache never held re-checks at once
      return;
    }
    this.states.delete(name);
    // An exit of its own keeps its reason; containers ended by a delete are reported as that delete.
    const reason = prev.state.phase === 'exited' && !prev.terminating ? prev.state.reason : this.deletionReason(name);
    const state: WorkloadState = { name, phase: 'missing', ...(reason ? { reason } : {}), labels: prev.state.labels };
    this.gone.delete(name);
    this.gone.set(name, state);
    if (this.gone.size > this.o.tombstones) this.gone.delete(this.gone.keys().next().value!);
    this.o.onChange(name, state);
    this.notify(name);
  }

  private deletionReason(name: string): string {
    return this.stopping.has(name) ? 'pod deleted by spawngate' : 'pod deleted (not by spawngate)';
  }

  /** Seeds the map from a create/get response unless the informer already knows this pod. */
  seed(pod: K8s.V1Pod): WorkloadState {
    const name = pod.metadata!.name!;
    const known = this.states.get(name);
    if (known && known.uid === pod.metadata?.uid) return known.state;
    this.onPod(pod);
    return this.states.get(name)!.state;
  }

  /** Drops a pod the API says is gone (or replaced), as if the informer had reported it. */
  forget(name: string, uid: string | undefined): void {
    const entry = this.states.get(name);
    if (entry && (!uid || entry.uid === uid)) this.onPodDeleted({ metadata: { name, uid: entry.uid } });
  }

  /**
   * After a full list: a pod the cache holds, that the list lacks and that the cache last heard of
   * before the list was sent, is gone. (The informer reports such deletes only for pods it saw itself,
   * not for those seeded from our own create while its watch was down.)
   */
  reconcile(listed: ReadonlySet<string>, listSentAt: number): void {
    for (const [name, entry] of [...this.states]) {
      if (!listed.has(name) && entry.at < listSentAt) this.onPodDeleted({ metadata: { name, uid: entry.uid } });
    }
  }

  /** Resolves true when the informer changed that pod, false after `ms` without news. */
  changed(name: string, ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      let set = this.waiters.get(name);
      if (!set) this.waiters.set(name, (set = new Set()));
      set.add(() => resolve(true));
      setTimeout(() => resolve(false), ms).unref();
    });
  }

  /** Wakes every waiter (on close). */
  wakeAll(): void {
    for (const name of [...this.waiters.keys()]) this.notify(name);
  }

  private notify(name: string): void {
    const waiters = this.waiters.get(name);
    if (!waiters) return;
    this.waiters.delete(name);
    for (const w of waiters) w();
  }
}
