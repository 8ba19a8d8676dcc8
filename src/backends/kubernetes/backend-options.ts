/** The kubernetes backend's options (one namespace; namespaces.ts routes several). */
import type { Logger } from '../../logging';
import type { EnvNameRule } from '../../config';
import type { KubeconfigSource } from './client';

export type KubernetesBackendLogger = Pick<Logger, 'debug' | 'info' | 'warn'>;

export interface KubernetesBackendOptions {
  /** The one namespace pods (and their Secrets) live in. Required. */
  namespace: string;
  /** Where credentials come from. Default `{ from: 'default' }` (KUBECONFIG, ~/.kube/config, else in-cluster). */
  kubeconfig?: KubeconfigSource;
  /** `app.kubernetes.io/instance` label value, to tell several installations in one namespace apart. Default none. */
  instance?: string;
  /**
   * A shared uid for pods whose profile sets no `runAsUser` (without `homeRoot`: when the home owner is
   * unknown). Default none: a pod with no uid from the profile, the home or here is refused.
   */
  defaultRunAsUser?: number;
  /** gid likewise. Default: the uid. */
  defaultRunAsGroup?: number;
  /**
   * Users' homes: a subPath (the user name, from the spec's `KERNEL_USERNAME`) of this claim, mounted at
   * `<root>/<user>`, and pods run as the owner of `<root>/<user>` as spawngate sees it (the same NFS/EFS
   * tree, read with one stat per launch). Default: no home volume.
   */
  home?: { claimName: string; root: string; readOnly?: boolean };
  /**
   * The home tree (`SPAWNGATE_HOME_ROOT` as spawngate sees it). When set, pods whose profile names no
   * `runAsUser` run as the owner of `<homeRoot>/<user>`; a missing or root-owned home is refused
   * (PermanentBackendError naming it), as on the other backends. Default: unset, `defaultRunAsUser`.
   */
  homeRoot?: string;
  /**
   * Fraction of a CPU/memory limit requested when only the limit is set (see docs/kubernetes.md,
   * "Requests"). Default 1, as Kubernetes itself defaults requests.
   */
  defaultRequestFraction?: number;
  /**
   * Which environment variable names the cluster accepts. Default: from the API server's `/version`
   * (relaxed from 1.32, C identifiers before), read once when the backend connects.
   */
  envNameRule?: EnvNameRule;
  /** How many names of deleted pods keep their last state (reason) for `state()`. Default 2000. */
  tombstones?: number;
  /**
   * Report an unschedulable pod as `exited` (reason `Unschedulable: …`) at once. Set false when a
   * cluster autoscaler (Karpenter, cluster-autoscaler) may still add a node. Default true.
   */
  failUnschedulable?: boolean;
  /** First delay before re-establishing a watch that failed (not 410); doubles with jitter up to `watch.backoffMaxMs`. Default 1000. */
  rewatchDelayMs?: number;
  /** How the pod and events watches guard against silent stalls (watch-guard.ts). */
  watch?: WatchTiming;
  /** Where the backend logs what it does (never environments or connection info). Default: spawngate's logger. */
  logger?: KubernetesBackendLogger;
}

/** Watch timing; every field has a default fit for a real API server. */
export interface WatchTiming {
  /** Server-side `timeoutSeconds` of the pod watch, drawn from [min, max] per connection. Default [300, 600]. */
  podTimeoutSeconds?: readonly [number, number];
  /** Likewise for the events watch (no bookmarks, so this bounds an unnoticed stall). Default [60, 120]. */
  eventsTimeoutSeconds?: readonly [number, number];
  /**
   * The pod watch is restarted when no event or bookmark arrived for this long, and `state()` reads
   * through to the API meanwhile. A real API server sends a watcher a bookmark about once a minute.
   * Default 90000; 0 turns the watchdog off (the old behaviour, kept for the bench's "before").
   */
  stallMs?: number;
  /** A connection still open this long after its timeout is ended client-side. Default 15000. */
  deadlineSlackMs?: number;
  /** Cap of the reconnect backoff. Default 30000. */
  backoffMaxMs?: number;
  /** A watch healthy for this long resets the backoff. Default 60000. */
  resetAfterMs?: number;
}
