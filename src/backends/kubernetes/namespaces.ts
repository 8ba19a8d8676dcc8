/**
 * Several namespaces behind one `Backend`: servers (and kernels of no experiment) in the default
 * namespace, each experiment's kernels in the namespace its template names. Each namespace has its own
 * kubernetes backend — one pod informer and one events watch — because a namespaced Role cannot watch
 * across namespaces (no ClusterRole, by design).
 *
 * Bounded: the namespaces watched are the default one, those of the experiments `discover()` returns
 * (read at start-up and at every `list()`, i.e. every reconcile pass) and those a launch names; never
 * more than `maxNamespaces` (a launch that would exceed it fails with a message naming the limit). Each
 * informer caches only spawngate-labelled pods, so memory follows spawngate's pods, not the cluster's.
 */
import { createHash } from 'node:crypto';
import { PermanentBackendError, type WorkloadEvent, type WorkloadSpec, type WorkloadState } from '../types';
import { ListenerSet } from '../support/listeners';
import { logger as rootLogger } from '../../logging';
import type { KubernetesBackendOptions } from './backend-options';
import { createKubernetesBackend, KUBERNETES_CAPABILITIES, type KubernetesBackend } from './kubernetes-backend';

/** The spec label naming a kernel's experiment (set by the kernels module). */
export const EXPERIMENT_LABEL = 'spawngate/experiment';
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export interface ExperimentNamespaces {
  /** e.g. `sg-{experiment}`: `{experiment}` becomes the experiment name made DNS-safe. */
  template: string;
  maxNamespaces: number;
  /** Experiments whose namespaces are watched before any launch (e.g. every experiment in the database). */
  discover?: () => Promise<string[]>;
}

export interface NamespacedBackendOptions extends Omit<KubernetesBackendOptions, 'namespace'> {
  namespace: string;
  experimentNamespaces?: ExperimentNamespaces;
}

/** The namespace of an experiment's kernels: the template with a DNS-safe experiment name. */
export function experimentNamespace(template: string, experiment: string): string {
  let safe = experiment.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '');
  if (safe !== experiment) safe = `${safe.slice(0, 40)}-${createHash('sha256').update(experiment).digest('hex').slice(0, 6)}`.replace(/^-/, '');
  const ns = template.replace('{experiment}', safe);
  if (ns.length > 63 || !DNS_LABEL.test(ns)) {
    throw new PermanentBackendError(`kubernetes backend: namespace ${JSON.stringify(ns)} for experiment ${JSON.stringify(experiment)} is not a DNS label`);
  }
  return ns;
}

/** The namespace a spec goes to under these options (pure; the dry run uses it too). */
export function namespaceFor(spec: Pick<WorkloadSpec, 'labels'>, opts: Pick<NamespacedBackendOptions, 'namespace' | 'experimentNamespaces'>): string {
  const experiment = spec.labels[EXPERIMENT_LABEL];
  return experiment && opts.experimentNamespaces ? experimentNamespace(opts.experimentNamespaces.template, experiment) : opts.namespace;
}

class NamespacedBackend implements KubernetesBackend {
  readonly name = 'kubernetes';
  readonly capabilities = KUBERNETES_CAPABILITIES;
  private readonly byNs = new Map<string, { backend: KubernetesBackend; unwatch: () => void }>();
  private readonly listeners: ListenerSet;
  private readonly discovered: Promise<void>;

  constructor(private readonly opts: NamespacedBackendOptions) {
    this.listeners = new ListenerSet(opts.logger ?? rootLogger.child({ component: 'backend-kubernetes' }));
    this.backendFor(opts.namespace);
    this.discovered = this.discover();
    this.discovered.catch(() => undefined);
  }

  private async discover(): Promise<void> {
    const e = this.opts.experimentNamespaces;
    if (!e?.discover) return;
    for (const experiment of await e.discover()) {
      try {
        this.backendFor(experimentNamespace(e.template, experiment));
      } catch (err) {
        this.opts.logger?.warn('experiment namespace not watched', { experiment, error: (err as Error).message });
      }
    }
  }

  private backendFor(ns: string): KubernetesBackend {
    const known = this.byNs.get(ns);
    if (known) return known.backend;
    const max = this.opts.experimentNamespaces?.maxNamespaces ?? 1;
    if (this.byNs.size >= max) {
      throw new PermanentBackendError(`kubernetes backend: namespace ${ns} would exceed kubernetes.experiment_namespaces.max_namespaces (${max})`);
    }
    const { experimentNamespaces: _ignored, ...rest } = this.opts;
    const backend = createKubernetesBackend({ ...rest, namespace: ns });
    const unwatch = backend.watch((e) => this.listeners.emit(e));
    const entry = { backend, unwatch };
    this.byNs.set(ns, entry);
    // A namespace whose first list fails (no Role there yet, API briefly down) is forgotten, so the next
    // launch into it tries again instead of failing for the life of the process.
    backend.state('').catch(() => {
      if (this.byNs.get(ns) !== entry) return;
      this.byNs.delete(ns);
      unwatch();
      void backend.close().catch(() => undefined);
    });
    return backend;
  }

  private all(): KubernetesBackend[] {
    return [...this.byNs.values()].map((v) => v.backend);
  }

  /** The backend whose cache holds the pod (pure cache reads, after every informer listed once). */
  private async owner(name: string): Promise<KubernetesBackend | undefined> {
    await this.discovered.catch(() => undefined);
    for (const b of this.all()) {
      await b.state(name).catch(() => undefined); // waits for that informer's first list
      if (b.has(name)) return b;
    }
    return undefined;
  }

  has(name: string): boolean {
    return this.all().some((b) => b.has(name));
  }

  async ensure(spec: WorkloadSpec, onEvent?: (e: WorkloadEvent) => void): Promise<WorkloadState> {
    return this.backendFor(namespaceFor(spec, this.opts)).ensure(spec, onEvent);
  }

  async state(name: string): Promise<WorkloadState> {
    const owner = await this.owner(name);
    if (owner) return owner.state(name);
    // Missing everywhere: the namespace that remembers why (a deleted pod's last reason), if any.
    const states = await Promise.all(this.all().map((b) => b.state(name).catch(() => undefined)));
    return states.find((s) => s?.reason) ?? { name, phase: 'missing' };
  }

  async stop(name: string, opts?: { graceSeconds?: number }): Promise<void> {
    const owner = await this.owner(name);
    if (owner) return owner.stop(name, opts);
    // Unknown to every cache: it may have been created a moment ago by another replica; delete is
    // idempotent (404 when gone), and the namespaces are bounded.
    await Promise.all(this.all().map((b) => b.stop(name, opts)));
  }

  async list(): Promise<WorkloadState[]> {
    await this.discover().catch((err: unknown) => this.opts.logger?.warn('experiment discovery failed', { error: (err as Error).message }));
    return (await Promise.all(this.all().map((b) => b.list()))).flat();
  }

  async logs(name: string, lines: number): Promise<string[]> {
    const owner = (await this.owner(name)) ?? this.backendFor(this.opts.namespace);
    return owner.logs(name, lines);
  }

  /** One cluster behind every namespace: the default namespace's backend asked it. */
  envNameRule(): ReturnType<KubernetesBackend['envNameRule']> {
    return this.backendFor(this.opts.namespace).envNameRule();
  }

  signal(name: string, sig: NodeJS.Signals): Promise<void> {
    return this.backendFor(this.opts.namespace).signal(name, sig);
  }

  watch(listener: (e: WorkloadEvent) => void): () => void {
    return this.listeners.add(listener);
  }

  async close(opts?: { stopAll?: boolean }): Promise<void> {
    await Promise.all(
      [...this.byNs.values()].map(async ({ backend, unwatch }) => {
        unwatch();
        await backend.close(opts);
      }),
    );
    this.listeners.clear();
  }
}

/**
 * One namespace (no `experimentNamespaces`): the plain per-namespace backend. Several: a router over one
 * backend per namespace.
 */
export function createNamespacedKubernetesBackend(opts: NamespacedBackendOptions): KubernetesBackend {
  if (!opts.experimentNamespaces) {
    const { experimentNamespaces: _ignored, ...rest } = opts;
    return createKubernetesBackend(rest);
  }
  return new NamespacedBackend(opts);
}
