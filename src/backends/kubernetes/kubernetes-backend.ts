/**
 * The `kubernetes` backend: each workload is one Pod in one namespace, created through
 * @kubernetes/client-node. Watching, not polling: ONE label-selected pod informer per backend (i.e. per
 * namespace) keeps a small map name → WorkloadState that `state`, `watch` and `stop` read, and one
 * events watch (involvedObject.kind=Pod, no cache) turns pod events into progress messages.
 *
 * What client-node's informer (`ListWatch`) does for us (verified in its cache.js): resumes a dropped
 * watch from the last resourceVersion (bookmarks included), relists on `410 Gone` (HTTP status or ERROR
 * event) and emits `delete` for pods that vanished meanwhile. What it does not: on any other error it
 * stops for good — we restart it with exponential backoff and jitter (honouring a list's Retry-After) —
 * and its watch has no timeout, no bookmarks and no stall detection — it runs on a `WatchGuard`
 * (watch-guard.ts) that adds a random server-side timeout, bookmarks, a watchdog and a client-side
 * deadline. Its own cache holds the full objects of our (label-selected) pods only; other pods in the
 * namespace never reach this process.
 *
 * `state()` reads the map (never the API: the launch paths poll it) while the pod watch is fresh; while
 * it is not (down, backing off, or no bookmark within `watch.stallMs`) it reads through to the API
 * (read-through.ts: one GET per pod name per second at most), so a frozen cache is never served.
 * `ready` means the informer's first list succeeded. The map lives in pod-cache.ts, the events watch in
 * events-watch.ts, deleting and waiting in pod-delete.ts, error mapping in errors.ts. API calls per
 * launch: create pod (+ create its Secret: a kernel's connection file, a server's tokens); 409 adds one
 * get. Per stop: one delete (plus one get when the cache does not hold the pod, and a force delete of a
 * pod its kubelet reported terminated but never removed). Every verb used is listed in
 * docs/kubernetes-rbac.md.
 */
import type * as K8s from '@kubernetes/client-node';
import { logger as rootLogger } from '../../logging';
import type { KubernetesBackendLogger, KubernetesBackendOptions } from './backend-options';
import {
  DEFAULT_STOP_GRACE_SECONDS,
  PermanentBackendError,
  TransientBackendError,
  UnsupportedError,
  type Backend,
  type BackendCapabilities,
  type WorkloadEvent,
  type WorkloadSpec,
  type WorkloadState,
} from '../types';
import { assertValidSpec, assertValidWorkloadName } from '../support/names';
import { deliver, ListenerSet } from '../support/listeners';
import { apiMessage, backendError, statusCode } from './errors';
import { PodEventsWatch } from './events-watch';
import { Backoff, retryAfterMs, WatchGuard } from './watch-guard';
import { PodCache } from './pod-cache';
import { ReadThrough } from './read-through';
import { deletePodAndWait } from './pod-delete';
import { loadClientNode, makeKubeConfig, type ClientNode } from './client';
import {
  buildPodSecret,
  buildPod,
  isManaged,
  managedSelector,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  SPEC_HASH_ANNOTATION,
} from './manifests';
import { podManifestOptions } from './pod-options';
import { podToState } from './pod-state';
import { k8sRules, type EnvNameRule } from '../../config';

export const KUBERNETES_BACKEND_NAME = 'kubernetes';

/** What every kubernetes backend declares (one namespace or one per experiment; the dry run renders for it). */
export const KUBERNETES_CAPABILITIES = { hostProcesses: false, overridesKey: 'kubernetes', signal: false } as const satisfies BackendCapabilities;

/**
 * The kubernetes backend implements `logs` and `watch`; `signal` throws UnsupportedError (the API has
 * no such verb, only pods/exec, deliberately not granted: interrupts go over ZMQ).
 */
export type KubernetesBackend = Backend &
  Required<Pick<Backend, 'logs' | 'watch' | 'signal' | 'envNameRule'>> & {
    /** Whether the informer's cache holds a live pod of that name (no API call). */
    has(name: string): boolean;
  };

interface Ctx {
  k8s: ClientNode;
  kc: K8s.KubeConfig;
  core: K8s.CoreV1Api;
  informer: K8s.ListWatch<K8s.V1Pod>;
  guard: WatchGuard;
  events: PodEventsWatch;
  envNameRule: EnvNameRule;
}

const isTerminal = (s: WorkloadState) => s.phase !== 'pending';

/** How often `ensure` replaces an exited pod of the same name before it gives up (another replica racing). */
const REPLACE_ATTEMPTS = 3;

class KubernetesBackendImpl implements KubernetesBackend {
  readonly name = KUBERNETES_BACKEND_NAME;
  readonly capabilities = KUBERNETES_CAPABILITIES;
  private readonly ns: string;
  private readonly selector: string;
  private readonly failUnschedulable: boolean;
  private readonly rewatchDelayMs: number;
  private readonly timing: Required<NonNullable<KubernetesBackendOptions['watch']>>;
  private readonly log: KubernetesBackendLogger;
  private readonly ready: Promise<Ctx>;
  private readonly cache: PodCache;
  private readonly reads: ReadThrough;
  private readonly listeners: ListenerSet;
  private readonly launchListeners = new Map<string, Set<(e: WorkloadEvent) => void>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private closed = false;

  constructor(private readonly options: KubernetesBackendOptions) {
    if (!options.namespace) throw new Error('kubernetes backend: options.namespace is required');
    this.ns = options.namespace;
    this.selector = managedSelector(options.instance);
    this.failUnschedulable = options.failUnschedulable ?? true;
    this.rewatchDelayMs = options.rewatchDelayMs ?? 1000;
    this.timing = {
      podTimeoutSeconds: [300, 600],
      eventsTimeoutSeconds: [60, 120],
      stallMs: 90_000,
      deadlineSlackMs: 15_000,
      backoffMaxMs: 30_000,
      resetAfterMs: 60_000,
      ...options.watch,
    };
    this.log = options.logger ?? rootLogger.child({ component: 'backend-kubernetes' });
    this.listeners = new ListenerSet(this.log);
    this.cache = new PodCache({
      failUnschedulable: this.failUnschedulable,
      tombstones: options.tombstones ?? 2000,
      onChange: (name, state) => this.emit({ name, type: 'state', state }),
    });
    this.reads = new ReadThrough(this.ns, this.cache, this.log, (labels) => isManaged(labels, options.instance));
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
    const t = this.timing;
    const backoff = new Backoff({ initialMs: this.rewatchDelayMs, maxMs: t.backoffMaxMs });
    const guard = new WatchGuard({
      watch: new k8s.Watch(kc),
      timeoutSeconds: t.podTimeoutSeconds,
      stallMs: t.stallMs,
      deadlineSlackMs: t.deadlineSlackMs,
      resetAfterMs: t.resetAfterMs,
      backoff,
    });
    const informer = new k8s.ListWatch<K8s.V1Pod>(
      `/api/v1/namespaces/${encodeURIComponent(this.ns)}/pods`,
      // ListWatch only calls `watch()`; its type asks for the whole Watch class.
      guard as unknown as K8s.Watch,
      async () => {
        try {
          const sentAt = Date.now();
          const list = await core.listNamespacedPod({ namespace: this.ns, labelSelector: this.selector });
          listed = true;
          this.cache.reconcile(new Set(list.items.map((p) => p.metadata?.name ?? '')), sentAt);
          return list;
        } catch (err) {
          firstListError ??= err;
          throw err;
        }
      },
      false,
      this.selector,
    );
    informer.on('add', (pod) => this.cache.onPod(pod));
    informer.on('update', (pod) => this.cache.onPod(pod));
    informer.on('delete', (pod) => this.cache.onPodDeleted(pod));
    informer.on('error', (err) => {
      if (this.closed || !listed) return; // before the first list: init fails instead
      const delay = backoff.next(retryAfterMs(err));
      this.log.warn('kubernetes pod watch failed; restarting', { error: apiMessage(err), namespace: this.ns, delayMs: delay });
      this.later(delay, () => informer.start().catch(() => undefined));
    });
    const events = new PodEventsWatch({
      k8s,
      kc,
      core,
      namespace: this.ns,
      timing: { timeoutSeconds: t.eventsTimeoutSeconds, deadlineSlackMs: t.deadlineSlackMs, resetAfterMs: t.resetAfterMs },
      backoff: { initialMs: this.rewatchDelayMs, maxMs: t.backoffMaxMs },
      later: (ms, fn) => this.later(ms, fn),
      closed: () => this.closed,
      log: this.log,
      onProgress: (pod, message) => {
        if (this.cache.has(pod) || this.launchListeners.has(pod)) this.emit({ name: pod, type: 'progress', message });
      },
    });
    await informer.start().catch((err: unknown) => {
      firstListError ??= err;
    });
    if (!listed) {
      await informer.stop();
      throw backendError(`listing pods in namespace ${this.ns} at ${kc.getCurrentCluster()?.server ?? '?'}`, firstListError);
    }
    void events.start();
    return { k8s, kc, core, informer, guard, events, envNameRule: this.options.envNameRule ?? (await this.clusterEnvNameRule(k8s, kc)) };
  }

  /** From `/version` (readable by every authenticated client); unknown → the rule every version accepts. */
  private async clusterEnvNameRule(k8s: ClientNode, kc: K8s.KubeConfig): Promise<EnvNameRule> {
    try {
      const v = await kc.makeApiClient(k8s.VersionApi).getCode();
      return k8sRules.envNameRuleFor(v.major, v.minor);
    } catch (err) {
      this.log.warn('kubernetes /version unreadable; environment variable names must be C identifiers', { error: apiMessage(err) });
      return 'c-identifier';
    }
  }

  /** The cluster's rule; while the API cannot be reached, the rule every version accepts (the launch reports the outage). */
  async envNameRule(): Promise<EnvNameRule> {
    return this.ready.then(
      (ctx) => ctx.envNameRule,
      () => 'c-identifier' as const,
    );
  }

  private later(ms: number, fn: () => void): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      if (!this.closed) fn();
    }, ms);
    t.unref();
    this.timers.add(t);
  }

  /** To every watcher, then to the launch's own `onEvent` (until the pod left `pending`); throwers are isolated. */
  private emit(e: WorkloadEvent): void {
    this.listeners.emit(e);
    const launch = this.launchListeners.get(e.name);
    if (launch) {
      for (const l of [...launch]) deliver(l, e, this.log);
      if (e.type === 'state' && e.state && isTerminal(e.state)) this.launchListeners.delete(e.name);
    }
  }

  // ---- Backend ---------------------------------------------------------------------------

  async ensure(spec: WorkloadSpec, onEvent?: (e: WorkloadEvent) => void): Promise<WorkloadState> {
    assertValidSpec(spec);
    const { core, envNameRule } = await this.ready;
    const options = await podManifestOptions(spec, { ...this.options, namespace: this.ns, envNameRule });
    if (options.home && !options.homeOwner) this.log.debug('home owner unknown or root; using the default uid', { pod: spec.name });
    const plan = buildPod(spec, options);
    if (onEvent) {
      let set = this.launchListeners.get(spec.name);
      if (!set) this.launchListeners.set(spec.name, (set = new Set()));
      set.add(onEvent);
    }
    let pod: K8s.V1Pod | undefined;
    for (let attempt = 1; !pod; attempt++) {
      try {
        pod = await core.createNamespacedPod({ namespace: this.ns, body: plan.pod });
        this.log.info('kubernetes pod created', { pod: spec.name, namespace: this.ns });
      } catch (err) {
        if (statusCode(err) !== 409) throw backendError(`creating pod ${spec.name}`, err);
        pod = await this.adopt(core, plan.pod, attempt < REPLACE_ATTEMPTS);
      }
    }
    const state = this.cache.seed(pod);
    if (plan.secretData) {
      try {
        await core.createNamespacedSecret({ namespace: this.ns, body: buildPodSecret(pod, plan.secretData) });
      } catch (err) {
        // 409: an earlier attempt for this same pod (adopted above) already created its Secret.
        if (statusCode(err) !== 409) {
          await this.stop(spec.name, { graceSeconds: 0 }).catch(() => undefined);
          throw backendError(`creating the secret of pod ${spec.name}`, err);
        }
      }
    }
    if (isTerminal(state)) this.launchListeners.delete(spec.name);
    return state;
  }

  /**
   * 409 on create. A pod spawngate did not label is refused; one that exited is deleted (then the
   * caller creates afresh, as `ensure` after an exit does on every backend; undefined is returned);
   * a live one is adopted only if spawngate made it for the same spec.
   */
  private async adopt(core: K8s.CoreV1Api, wanted: K8s.V1Pod, mayReplace: boolean): Promise<K8s.V1Pod | undefined> {
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
    if (podToState(existing, { failUnschedulable: this.failUnschedulable }).phase === 'exited') {
      if (!mayReplace) throw new TransientBackendError(`kubernetes backend: pod ${name} keeps being recreated by someone else`);
      this.log.info('kubernetes pod exited; replacing it', { pod: name, namespace: this.ns });
      await this.removePod(core, name, meta.uid, 0, this.cache.has(name));
      return undefined;
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
    const { core, guard } = await this.ready;
    if (!guard.fresh()) await this.reads.read(core, name);
    return this.cache.lookup(name) ?? { name, phase: 'missing' };
  }

  /** Whether the cache holds a (live) pod of that name. */
  has(name: string): boolean {
    return this.cache.has(name);
  }

  async stop(name: string, opts: { graceSeconds?: number } = {}): Promise<void> {
    assertValidWorkloadName(name);
    const { core } = await this.ready;
    // Not in the cache: the pod may be one another replica created a moment ago that the watch has not
    // delivered yet. One GET decides — and a pod of that name spawngate did not label is never touched.
    let uid = this.cache.get(name)?.uid;
    const cached = uid !== undefined;
    if (!uid) {
      try {
        const pod = await core.readNamespacedPod({ name, namespace: this.ns });
        if (pod.metadata?.labels?.[MANAGED_BY_LABEL] !== MANAGED_BY_VALUE) {
          throw new PermanentBackendError(`kubernetes backend: refusing to delete pod ${name} in ${this.ns}: it is not managed by spawngate`);
        }
        uid = pod.metadata.uid;
      } catch (err) {
        if (statusCode(err) === 404) return;
        throw backendError(`reading pod ${name}`, err);
      }
    }
    const graceSeconds = Math.max(0, Math.round(opts.graceSeconds ?? DEFAULT_STOP_GRACE_SECONDS));
    await this.removePod(core, name, uid, graceSeconds, cached);
  }

  private async removePod(core: K8s.CoreV1Api, name: string, uid: string | undefined, graceSeconds: number, cached: boolean): Promise<void> {
    this.cache.stopping.add(name);
    try {
      await deletePodAndWait(core, this.cache, { namespace: this.ns, name, uid }, graceSeconds, cached, this.log);
    } finally {
      this.cache.stopping.delete(name);
    }
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

  /** The Kubernetes API has no signal verb (only pods/exec, deliberately not granted). */
  signal(name: string, sig: NodeJS.Signals): Promise<void> {
    return Promise.reject(
      new UnsupportedError(`kubernetes backend: cannot send ${sig} to pod ${name}: the API has no signal verb; interrupt the kernel with an interrupt_request`),
    );
  }

  watch(listener: (e: WorkloadEvent) => void): () => void {
    return this.listeners.add(listener);
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
    ctx?.events.stop();
    await ctx?.informer.stop();
    this.cache.wakeAll();
    this.listeners.clear();
    this.launchListeners.clear();
  }
}

/** A backend for one namespace. Connects lazily; the first call fails if the API cannot be reached. */
export function createKubernetesBackend(options: KubernetesBackendOptions): KubernetesBackend {
  return new KubernetesBackendImpl(options);
}
