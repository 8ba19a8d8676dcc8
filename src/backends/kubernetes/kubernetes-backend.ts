/**
 * The `kubernetes` backend: each workload is one Pod in one namespace, created through
 * @kubernetes/client-node. Watching, not polling: ONE label-selected pod informer per backend (i.e. per
 * namespace) keeps a small map name → WorkloadState that `state`, `watch` and `stop` read, and one
 * events watch (involvedObject.kind=Pod, no cache) turns pod events into progress messages.
 *
 * What client-node's informer does for us (verified in its cache.js): resumes a dropped watch from the
 * last resourceVersion (bookmarks included), relists on `410 Gone` (HTTP status or ERROR event) and
 * emits `delete` for pods that vanished meanwhile. What it does not: on any other error it stops for
 * good — we restart it after `rewatchDelayMs` — and it never asks for bookmarks — the watch path
 * carries `allowWatchBookmarks=true`. Its own cache holds the full objects of our (label-selected)
 * pods only; other pods in the namespace never reach this process.
 *
 * `state()` reads the map only (never the API: the launch paths poll it); `ready` means the informer's
 * first list succeeded. API calls per launch: create pod (+ create secret for kernels); 409 adds one
 * get. Per stop: one delete (plus one get when the cache does not hold the pod). Every verb used is
 * listed in docs/kubernetes-rbac.md.
 */
import type * as K8s from '@kubernetes/client-node';
import { logger as rootLogger, type Logger } from '../../logging';
import {
  PermanentBackendError,
  TransientBackendError,
  type Backend,
  type WorkloadEvent,
  type WorkloadSpec,
  type WorkloadState,
} from '../types';
import { loadClientNode, makeKubeConfig, type ClientNode, type KubeconfigSource } from './client';
import {
  buildConnectionSecret,
  buildPod,
  managedSelector,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  SPEC_HASH_ANNOTATION,
} from './manifests';
import { podManifestOptions } from './pod-options';
import { eventToProgress, podToState, stateChanged } from './pod-state';

export const KUBERNETES_BACKEND_NAME = 'kubernetes';

/** The kubernetes backend implements `logs` and `watch`; `signal` is not an API verb (interrupts go over ZMQ). */
export type KubernetesBackend = Backend &
  Required<Pick<Backend, 'logs' | 'watch'>> & {
    /** Whether the informer's cache holds a live pod of that name (no API call). */
    has(name: string): boolean;
  };

export type KubernetesBackendLogger = Pick<Logger, 'debug' | 'info' | 'warn'>;

export interface KubernetesBackendOptions {
  /** The one namespace pods (and their Secrets) live in. Required. */
  namespace: string;
  /** Where credentials come from. Default `{ from: 'default' }` (KUBECONFIG, ~/.kube/config, else in-cluster). */
  kubeconfig?: KubeconfigSource;
  /** `app.kubernetes.io/instance` label value, to tell several installations in one namespace apart. Default none. */
  instance?: string;
  /** uid for pods whose profile sets no `runAsUser` and whose home owner is unknown or root. Default 1000. */
  defaultRunAsUser?: number;
  /** gid likewise. Default: the uid. */
  defaultRunAsGroup?: number;
  /**
   * Users' homes: a subPath (the user name, from the spec's `KERNEL_USERNAME`) of this claim, mounted at
   * `<root>/<user>`, and pods run as the owner of `<root>/<user>` as spawngate sees it (the same NFS/EFS
   * tree, read with one stat per launch). Default: no home volume.
   */
  home?: { claimName: string; root: string; readOnly?: boolean };
  /** How many names of deleted pods keep their last state (reason) for `state()`. Default 2000. */
  tombstones?: number;
  /**
   * Report an unschedulable pod as `exited` (reason `Unschedulable: …`) at once. Set false when a
   * cluster autoscaler (Karpenter, cluster-autoscaler) may still add a node. Default true.
   */
  failUnschedulable?: boolean;
  /** Milliseconds before re-establishing a watch that failed with an error (not 410). Default 1000. */
  rewatchDelayMs?: number;
  /** Where the backend logs what it does (never environments or connection info). Default: spawngate's logger. */
  logger?: KubernetesBackendLogger;
}

interface Ctx {
  k8s: ClientNode;
  kc: K8s.KubeConfig;
  core: K8s.CoreV1Api;
  informer: K8s.Informer<K8s.V1Pod>;
}

interface Entry {
  uid: string | undefined;
  state: WorkloadState;
}


function statusCode(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e?.code === 'number') return e.code;
  if (typeof e?.statusCode === 'number') return e.statusCode;
  return undefined;
}

function apiMessage(err: unknown): string {
  const body = (err as { body?: unknown })?.body;
  if (typeof body === 'string') {
    try {
      const status = JSON.parse(body) as { message?: string };
      if (status.message) return status.message;
    } catch {
      return body.slice(0, 300);
    }
  }
  return err instanceof Error ? err.message : String(err);
}

/** API failures as the backend contract's errors: 4xx cannot be fixed by a retry (except 409/429), the rest can. */
function backendError(what: string, err: unknown): Error {
  const code = statusCode(err);
  const message = `kubernetes backend: ${what} failed${code ? ` (${code})` : ''}: ${apiMessage(err)}`;
  if (code !== undefined && code >= 400 && code < 500 && code !== 409 && code !== 429) {
    return new PermanentBackendError(message, { cause: err });
  }
  return new TransientBackendError(message, { cause: err });
}

const isTerminal = (s: WorkloadState) => s.phase !== 'pending';

class KubernetesBackendImpl implements KubernetesBackend {
  readonly name = KUBERNETES_BACKEND_NAME;
  readonly capabilities = { hostProcesses: false, overridesKey: 'kubernetes' } as const;
  private readonly ns: string;
  private readonly selector: string;
  private readonly failUnschedulable: boolean;
  private readonly rewatchDelayMs: number;
  private readonly log: KubernetesBackendLogger;
  private readonly ready: Promise<Ctx>;
  private readonly states = new Map<string, Entry>();
  /** Last states of deleted pods (bounded, oldest dropped): `state()` answers them without an API call. */
  private readonly gone = new Map<string, WorkloadState>();
  private readonly listeners = new Set<(e: WorkloadEvent) => void>();
  private readonly launchListeners = new Map<string, Set<(e: WorkloadEvent) => void>>();
  private readonly changeWaiters = new Map<string, Set<() => void>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly stopping = new Set<string>();
  private eventsRv: string | undefined;
  private eventsRequest: AbortController | undefined;
  private closed = false;

  constructor(private readonly options: KubernetesBackendOptions) {
    if (!options.namespace) throw new Error('kubernetes backend: options.namespace is required');
    this.ns = options.namespace;
    this.selector = managedSelector(options.instance);
    this.failUnschedulable = options.failUnschedulable ?? true;
    this.rewatchDelayMs = options.rewatchDelayMs ?? 1000;
    this.log = options.logger ?? rootLogger.child({ component: 'backend-kubernetes' });
    this.ready = this.init();
    this.ready.catch(() => undefined); // surfaced by the first call
  }

  private async init(): Promise<Ctx> {
    const k8s = await loadClientNode();
    const kc = makeKubeConfig(k8s, this.options.kubeconfig ?? { from: 'default' });
    const core = kc.makeApiClient(k8s.CoreV1Api);
    // client-node's informer reports a failed list through its error event and still resolves start():
    // the first list's outcome is tracked here so `ready` means "the cache holds the namespace".
    let listed = false;
    let firstListError: unknown;
    const informer = k8s.makeInformer<K8s.V1Pod>(
      kc,
      `/api/v1/namespaces/${encodeURIComponent(this.ns)}/pods?allowWatchBookmarks=true`,
      async () => {
        try {
          const list = await core.listNamespacedPod({ namespace: this.ns, labelSelector: this.selector });
          listed = true;
          return list;
        } catch (err) {
          firstListError ??= err;
          throw err;
        }
      },
      this.selector,
    );
    informer.on('add', (pod) => this.onPod(pod));
    informer.on('update', (pod) => this.onPod(pod));
    informer.on('delete', (pod) => this.onPodDeleted(pod));
    informer.on('error', (err) => {
      if (this.closed || !listed) return; // before the first list: init fails instead
      this.log.warn('kubernetes pod watch failed; restarting', { error: apiMessage(err), namespace: this.ns });
      this.later(this.rewatchDelayMs, () => informer.start().catch(() => undefined));
    });
    const ctx = { k8s, kc, core, informer };
    await informer.start().catch((err: unknown) => {
      firstListError ??= err;
    });
    if (!listed) {
      await informer.stop();
      throw backendError(`listing pods in namespace ${this.ns} at ${kc.getCurrentCluster()?.server ?? '?'}`, firstListError);
    }
    void this.watchEvents(ctx);
    return ctx;
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.closed) fn();
    }, ms);
    t.unref();
    this.timers.add(t);
  }

  // ---- informer → state map -------------------------------------------------------------

  private emit(e: WorkloadEvent): void {
    for (const l of this.listeners) l(e);
    const launch = this.launchListeners.get(e.name);
    if (launch) {
      for (const l of launch) l(e);
      if (e.type === 'state' && e.state && isTerminal(e.state)) this.launchListeners.delete(e.name);
    }
  }

  private notify(name: string): void {
    const waiters = this.changeWaiters.get(name);
    if (!waiters) return;
    this.changeWaiters.delete(name);
    for (const w of waiters) w();
  }

  /** Resolves true when the informer changed that pod, false after `ms` without news. */
  private changed(name: string, ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      let set = this.changeWaiters.get(name);
      if (!set) this.changeWaiters.set(name, (set = new Set()));
      set.add(() => resolve(true));
      setTimeout(() => resolve(false), ms).unref();
    });
  }

  private onPod(pod: K8s.V1Pod): void {
    const name = pod.metadata?.name;
    if (!name) return;
    const state = podToState(pod, { failUnschedulable: this.failUnschedulable });
    const prev = this.states.get(name);
    this.gone.delete(name);
    this.states.set(name, { uid: pod.metadata?.uid, state });
    if (stateChanged(prev?.state, state)) this.emit({ name, type: 'state', state });
    this.notify(name);
  }

  private onPodDeleted(pod: K8s.V1Pod): void {
    const name = pod.metadata?.name;
    if (!name) return;
    const prev = this.states.get(name);
    if (!prev || (prev.uid && pod.metadata?.uid && prev.uid !== pod.metadata.uid)) {
      this.notify(name); // a stop() waiting on a pod its cache never held re-checks at once
      return;
    }
    this.states.delete(name);
    const reason = prev.state.phase === 'exited' ? prev.state.reason : this.stopping.has(name) ? 'pod deleted by spawngate' : 'pod deleted (not by spawngate)';
    const state: WorkloadState = { name, phase: 'missing', ...(reason ? { reason } : {}), labels: prev.state.labels };
    this.gone.delete(name);
    this.gone.set(name, state);
    if (this.gone.size > (this.options.tombstones ?? 2000)) this.gone.delete(this.gone.keys().next().value!);
    this.emit({ name, type: 'state', state });
    this.notify(name);
  }

  /** Seeds the map from a create/get response unless the informer already knows this pod. */
  private seed(pod: K8s.V1Pod): WorkloadState {
    const name = pod.metadata!.name!;
    const known = this.states.get(name);
    if (known && known.uid === pod.metadata?.uid) return known.state;
    this.onPod(pod);
    return this.states.get(name)!.state;
  }

  // ---- events → progress ----------------------------------------------------------------

  private async watchEvents(ctx: Ctx): Promise<void> {
    if (this.closed) return;
    const fieldSelector = 'involvedObject.kind=Pod';
    try {
      if (!this.eventsRv) {
        // Only the collection's resourceVersion is wanted: old events are not replayed as progress.
        const list = await ctx.core.listNamespacedEvent({ namespace: this.ns, fieldSelector, limit: 1 });
        this.eventsRv = list.metadata?.resourceVersion;
      }
      const watch = new ctx.k8s.Watch(ctx.kc);
      this.eventsRequest = await watch.watch(
        `/api/v1/namespaces/${encodeURIComponent(this.ns)}/events`,
        { fieldSelector, resourceVersion: this.eventsRv, allowWatchBookmarks: true },
        (type: string, obj: { code?: number; metadata?: { resourceVersion?: string } } & K8s.CoreV1Event) => {
          if (type === 'ERROR') {
            if (obj.code === 410) this.eventsRv = undefined;
            return;
          }
          if (obj.metadata?.resourceVersion) this.eventsRv = obj.metadata.resourceVersion;
          if (type !== 'ADDED' && type !== 'MODIFIED') return;
          const progress = eventToProgress(obj);
          if (progress && (this.states.has(progress.pod) || this.launchListeners.has(progress.pod))) {
            this.emit({ name: progress.pod, type: 'progress', message: progress.message });
          }
        },
        (err: unknown) => {
          if (this.closed) return;
          if (statusCode(err) === 410) this.eventsRv = undefined;
          this.later(err && statusCode(err) !== 410 ? this.rewatchDelayMs : 0, () => void this.watchEvents(ctx));
        },
      );
    } catch (err) {
      if (this.closed) return;
      this.log.warn('kubernetes events watch failed; restarting', { error: apiMessage(err), namespace: this.ns });
      this.later(this.rewatchDelayMs, () => void this.watchEvents(ctx));
    }
  }

  // ---- Backend ---------------------------------------------------------------------------

  async ensure(spec: WorkloadSpec, onEvent?: (e: WorkloadEvent) => void): Promise<WorkloadState> {
    const options = await podManifestOptions(spec, { ...this.options, namespace: this.ns });
    if (options.home && !options.homeOwner) this.log.debug('home owner unknown or root; using the default uid', { pod: spec.name });
    const plan = buildPod(spec, options);
    const { core } = await this.ready;
    if (onEvent) {
      let set = this.launchListeners.get(spec.name);
      if (!set) this.launchListeners.set(spec.name, (set = new Set()));
      set.add(onEvent);
    }
    let pod: K8s.V1Pod;
    try {
      pod = await core.createNamespacedPod({ namespace: this.ns, body: plan.pod });
      this.log.info('kubernetes pod created', { pod: spec.name, namespace: this.ns });
    } catch (err) {
      if (statusCode(err) !== 409) throw backendError(`creating pod ${spec.name}`, err);
      pod = await this.adopt(core, plan.pod);
    }
    const state = this.seed(pod);
    if (plan.connectionInfo !== undefined) {
      try {
        await core.createNamespacedSecret({ namespace: this.ns, body: buildConnectionSecret(pod, plan.connectionInfo) });
      } catch (err) {
        // 409: an earlier attempt for this same pod (adopted above) already created its Secret.
        if (statusCode(err) !== 409) {
          await this.stop(spec.name, { graceSeconds: 0 }).catch(() => undefined);
          throw backendError(`creating connection secret for pod ${spec.name}`, err);
        }
      }
    }
    if (isTerminal(state)) this.launchListeners.delete(spec.name);
    return state;
  }

  /** 409 on create: the existing pod is adopted only if spawngate made it for the same spec. */
  private async adopt(core: K8s.CoreV1Api, wanted: K8s.V1Pod): Promise<K8s.V1Pod> {
    const name = wanted.metadata!.name!;
    let existing: K8s.V1Pod;
    try {
      existing = await core.readNamespacedPod({ name, namespace: this.ns });
    } catch (err) {
      if (statusCode(err) === 404) throw new TransientBackendError(`kubernetes backend: pod ${name} vanished while adopting it`);
      throw backendError(`reading pod ${name}`, err);
    }
    const meta = existing.metadata ?? {};
    if (meta.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY_VALUE) {
      throw new PermanentBackendError(`kubernetes backend: pod ${name} already exists in ${this.ns} and is not managed by spawngate`);
    }
    if (meta.deletionTimestamp) {
      throw new TransientBackendError(`kubernetes backend: pod ${name} is being deleted; retry once it is gone`);
    }
    if (meta.annotations?.[SPEC_HASH_ANNOTATION] !== wanted.metadata?.annotations?.[SPEC_HASH_ANNOTATION]) {
      throw new PermanentBackendError(`kubernetes backend: pod ${name} already exists with a different spec; stop it first`);
    }
    this.log.info('kubernetes pod adopted', { pod: name, namespace: this.ns });
    return existing;
  }

  /**
   * From the informer's cache only — never an API call, so callers may poll it (the launch paths do,
   * every 100 ms). The cache was filled by a full list before the first call returns, and every pod of
   * ours created since arrives on the watch (or was seeded by our own create), so a name it does not
   * hold is missing; deleted pods keep their last reason for a while.
   */
  async state(name: string): Promise<WorkloadState> {
    await this.ready;
    const known = this.states.get(name);
    if (known) return known.state;
    return this.gone.get(name) ?? { name, phase: 'missing' };
  }

  /** Whether the cache holds a (live) pod of that name. */
  has(name: string): boolean {
    return this.states.has(name);
  }

  async stop(name: string, opts: { graceSeconds?: number } = {}): Promise<void> {
    const { core } = await this.ready;
    // Not in the cache: the pod may be one another replica created a moment ago that the watch has not
    // delivered yet. One GET decides — and a pod of that name spawngate did not label is never touched.
    let uid = this.states.get(name)?.uid;
    const cached = uid !== undefined;
    if (!uid) {
      try {
        const pod = await core.readNamespacedPod({ name, namespace: this.ns });
        if (pod.metadata?.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY_VALUE) return;
        uid = pod.metadata.uid;
      } catch (err) {
        if (statusCode(err) === 404) return;
        throw backendError(`reading pod ${name}`, err);
      }
    }
    const graceSeconds = Math.max(0, Math.round(opts.graceSeconds ?? 30));
    this.stopping.add(name);
    try {
      await this.deletePod(core, name, uid, graceSeconds, cached);
    } finally {
      this.stopping.delete(name);
    }
  }

  private async deletePod(core: K8s.CoreV1Api, name: string, uid: string | undefined, graceSeconds: number, cachedAtStart: boolean): Promise<void> {
    try {
      await core.deleteNamespacedPod({
        name,
        namespace: this.ns,
        gracePeriodSeconds: graceSeconds,
        body: { gracePeriodSeconds: graceSeconds, ...(uid ? { preconditions: { uid } } : {}) },
      });
    } catch (err) {
      const code = statusCode(err);
      if (code === 404 || code === 409) return this.forget(name, uid); // gone, or a newer pod of that name
      throw backendError(`deleting pod ${name}`, err);
    }
    // Resolves on the informer's delete; a GET after a few quiet seconds covers a watch that is down
    // (and a pod the cache never held).
    let seen = cachedAtStart;
    for (;;) {
      const cached = this.states.get(name);
      if (cached && cached.uid !== uid) return; // a newer pod of that name
      if (cached) seen = true;
      else if (seen) return; // it left the cache: deleted
      // News about a pod the cache holds: look again; anything else (quiet for 3 s, or a delete of a pod
      // the cache never held): ask the API.
      if ((await this.changed(name, 3000)) && (seen || this.states.has(name))) continue;
      try {
        const pod = await core.readNamespacedPod({ name, namespace: this.ns });
        if (pod.metadata?.uid !== uid) return this.forget(name, uid);
      } catch (err) {
        if (statusCode(err) === 404) return this.forget(name, uid);
      }
    }
  }

  private forget(name: string, uid: string | undefined): void {
    const entry = this.states.get(name);
    if (entry && (!uid || entry.uid === uid)) this.onPodDeleted({ metadata: { name, uid: entry.uid } });
  }

  async list(): Promise<WorkloadState[]> {
    const { core } = await this.ready;
    try {
      const list = await core.listNamespacedPod({ namespace: this.ns, labelSelector: this.selector });
      return list.items.map((pod) => podToState(pod, { failUnschedulable: this.failUnschedulable }));
    } catch (err) {
      throw backendError(`listing pods in ${this.ns}`, err);
    }
  }

  async logs(name: string, lines: number): Promise<string[]> {
    const { core } = await this.ready;
    try {
      const text = await core.readNamespacedPodLog({ name, namespace: this.ns, tailLines: Math.max(1, lines) });
      const out = String(text).split('\n');
      if (out[out.length - 1] === '') out.pop();
      return out.slice(-lines);
    } catch (err) {
      const code = statusCode(err);
      if (code === 404 || code === 400) return []; // no such pod, or its container has not started yet
      throw backendError(`reading logs of pod ${name}`, err);
    }
  }

  watch(listener: (e: WorkloadEvent) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  async close(opts: { stopAll?: boolean } = {}): Promise<void> {
    if (opts.stopAll) {
      const all = await this.list().catch(() => []);
      await Promise.all(all.map((s) => this.stop(s.name, { graceSeconds: 0 }).catch(() => undefined)));
    }
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const ctx = await this.ready.catch(() => undefined);
    this.eventsRequest?.abort();
    await ctx?.informer.stop();
    for (const name of [...this.changeWaiters.keys()]) this.notify(name);
    this.listeners.clear();
    this.launchListeners.clear();
  }
}

/** A backend for one namespace. Connects lazily; the first call fails if the API cannot be reached. */
export function createKubernetesBackend(options: KubernetesBackendOptions): KubernetesBackend {
  return new KubernetesBackendImpl(options);
}
