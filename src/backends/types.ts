/**
 * The one plug-point for where workloads run. A backend makes a workload exist, reports its state and
 * removes it; it knows nothing of HTTP, users' quotas or retries — the caller owns timeouts, retries
 * and polling (STYLE: "the core owns timeouts").
 */
import type { EnvNameRule } from '../config';

/**
 * The label naming the hub user a workload belongs to. Its value is the exact user name (any Unicode
 * but `/`); a backend whose labels have a restricted alphabet escapes it (see `nameSlug`) and keeps the
 * exact name beside it.
 */
export const WORKLOAD_USER_LABEL = 'spawngate/user';

/** What kind of workload; backends may label and place them differently. */
export type WorkloadKind = 'server' | 'kernel';

export interface WorkloadResources {
  cpuRequest?: number;
  cpuLimit?: number;
  memoryRequestMiB?: number;
  memoryLimitMiB?: number;
  gpuLimit?: number;
}

export interface WorkloadSpec {
  /**
   * Deterministic name, unique per backend, e.g. `sg-server-alice-6b1f…`. Two `ensure` calls with the
   * same name refer to the same workload. Lower-case DNS label, at most 63 characters.
   */
  name: string;
  kind: WorkloadKind;
  /** Key/value labels recorded on the workload (Kubernetes labels, Docker labels, a local sidecar file). */
  labels: Record<string, string>;
  /** argv to run. `{port}` in any element is replaced by the port the backend chose. */
  command: string[];
  env: Record<string, string>;
  /** Container image (docker/kubernetes); ignored by `local`. */
  image?: string;
  resources?: WorkloadResources;
  workingDir?: string;
  /**
   * Ports the workload listens on. `local` picks free ports on 127.0.0.1 and substitutes them into
   * `command` (`{port}`, `{port:name}`) and `env` values; container backends use them as given.
   */
  ports?: Record<string, number>;
  /** Backend-specific overrides taken from a profile (pod fields, container options). Opaque here. */
  overrides?: Record<string, unknown>;
}

export type WorkloadPhase = 'pending' | 'running' | 'exited' | 'missing';

export interface WorkloadState {
  name: string;
  phase: WorkloadPhase;
  /** Host/IP the workload is reachable at, once running. */
  host?: string;
  /**
   * The workload's own address on its network (its container's or pod's IP), once running: where its
   * connections to spawngate come from, and where ports it chose itself (not published) are reached.
   * Container backends report it; host processes have none.
   */
  address?: string;
  /** Resolved ports by name (`default` for the single port). */
  ports?: Record<string, number>;
  /** Exit status when `exited`. */
  exitCode?: number;
  /** Human-readable reason for `exited`/`missing` (e.g. "OOMKilled", "exited with status 1"). */
  reason?: string;
  labels?: Record<string, string>;
  /** Opaque reference the backend needs to find the workload again after a restart (pid, container id…). */
  ref?: Record<string, unknown>;
}

export interface WorkloadEvent {
  name: string;
  /** `progress` for informational messages, `state` when the phase changed. */
  type: 'progress' | 'state';
  message?: string;
  state?: WorkloadState;
}

/**
 * Seconds between the graceful signal and the forced kill when `stop` is given no `graceSeconds`, on
 * every backend (Jupyter servers and kernels shut down in well under that).
 */
export const DEFAULT_STOP_GRACE_SECONDS = 5;

/** Thrown by a backend for a capability it does not have (never silently do nothing). */
export class UnsupportedError extends Error {
  override readonly name = 'UnsupportedError';
}

/**
 * Thrown for failures worth retrying (daemon briefly unreachable, API 5xx, 429). An API's HTTP 409
 * (conflict with the resource's current state: a removal or a create in flight, a stale
 * resourceVersion) is transient on every backend; where a 409 has a known meaning the backend maps it
 * first (a name taken by a workload spawngate did not create is permanent, see `ensure`).
 */
export class TransientBackendError extends Error {
  override readonly name = 'TransientBackendError';
}

/**
 * Thrown for failures a retry cannot fix: an invalid spec (name that is not a DNS label, empty command,
 * unknown override), a missing image or command, a home that is missing or belongs to root, a name
 * taken by a workload spawngate did not create, an API's other 4xx.
 */
export class PermanentBackendError extends Error {
  override readonly name = 'PermanentBackendError';
}

/**
 * What a backend's workloads are like, declared by the backend so that callers never branch on its
 * name. Callers adapt specs to these facts (which ports to ask for, where a connection file lives).
 */
export interface BackendCapabilities {
  /**
   * Workloads are processes on spawngate's own host: they share its port space and filesystem, so
   * ports are picked per workload (`0` in `spec.ports`) and files spawngate writes are visible to them.
   * Container backends give each workload its own network namespace and filesystem instead.
   */
  readonly hostProcesses: boolean;
  /**
   * Workloads of different users run under different identities yet share one network namespace: a
   * TCP port one user's workload listens on can be reached by every other user's (file permissions
   * wall off what lives in directories, nothing walls off a port). Callers keep such workloads off TCP
   * unless an administrator accepts the risk. Absent: false.
   */
  readonly portsSharedAcrossUsers?: boolean;
  /** Which profile block (`docker:` or `kubernetes:`) holds this backend's overrides; none for local. */
  readonly overridesKey?: 'docker' | 'kubernetes';
  /**
   * `signal` delivers signals to a running workload's main process. When false, `signal` is absent or
   * refuses with UnsupportedError, and callers reach the workload another way (a kernel's
   * `interrupt_request`) without trying it first.
   */
  readonly signal: boolean;
}

/**
 * A place workloads run. Every backend follows the rules documented on each method and is checked by
 * the shared suite `tests/backends/contract.ts`. What still differs, by nature rather than drift:
 * - `local` has no foreign workloads (its records live in its private 0700 state directory) and runs
 *   each workload as the owner of the user's home through setpriv (see local/identity.ts);
 *   containers run as that owner through the engine or the pod's securityContext.
 * - `kubernetes` cannot `signal` (`capabilities.signal` false, UnsupportedError); its `state` reads an
 *   informer cache, never the API.
 * - `docker` puts each user's containers on a network of their own (docker/user-networks.ts).
 * - Which overrides a profile may pass (`capabilities.overridesKey`) and whether workloads share
 *   spawngate's host (`capabilities.hostProcesses`).
 */
export interface Backend {
  /** Constant backend name: 'local' | 'docker' | 'kubernetes'. For logs and labels, never for branching. */
  readonly name: string;

  /** What this backend's workloads are like (see `BackendCapabilities`). Constant for the instance. */
  readonly capabilities: BackendCapabilities;

  /**
   * Makes the workload exist and run. Idempotent: a workload with `spec.name` that spawngate created
   * (by any instance or replica on the same engine, namespace or state directory) that is pending or
   * running is adopted and its current state returned — never a second one. One that has exited is
   * replaced by a fresh one from `spec` (its exit status is lost): `ensure` after an exit starts the
   * workload again, on every backend. A workload of that name that spawngate did not create (no
   * spawngate label) is refused with PermanentBackendError, never adopted, replaced or removed.
   * Returns once the backend accepted the workload (phase `pending` or `running`), not when the process
   * inside is ready; readiness is the caller's check.
   * @throws PermanentBackendError (invalid spec, see its doc) | TransientBackendError
   */
  ensure(spec: WorkloadSpec, onEvent?: (e: WorkloadEvent) => void): Promise<WorkloadState>;

  /**
   * Current state of a workload by name. Never throws for an unknown name: returns phase `missing`.
   * Pure read; may be called at any rate by the caller.
   */
  state(name: string): Promise<WorkloadState>;

  /**
   * Stops and removes the workload: graceful signal, then forced after `graceSeconds` (default
   * `DEFAULT_STOP_GRACE_SECONDS`). Idempotent: stopping a missing or already exited workload resolves.
   * Resolves when the workload is gone. A workload of that name spawngate did not create is left alone
   * and refused with PermanentBackendError.
   */
  stop(name: string, opts?: { graceSeconds?: number }): Promise<void>;

  /** Every workload this backend manages (by its labels), for reconciliation at start-up. */
  list(): Promise<WorkloadState[]>;

  /** Last lines of the workload's output (stdout and stderr), oldest first. Optional. */
  logs?(name: string, lines: number): Promise<string[]>;

  /**
   * Sends a signal to the workload's main process (used for kernel interrupts). Optional; present and
   * working exactly when `capabilities.signal` is true. A backend that has the method but cannot signal
   * (Kubernetes has no such API verb) declares false and throws UnsupportedError.
   * @throws PermanentBackendError when the workload is not running | UnsupportedError
   */
  signal?(name: string, signal: NodeJS.Signals): Promise<void>;

  /**
   * The uid/gid (and home) a workload of hub user `username` runs as on this machine, for files
   * spawngate prepares for it (a kernel's runtime directory). Backends whose workloads are host
   * processes have it; it applies the same rule `ensure` does and throws what `ensure` would.
   */
  runAs?(username: string): Promise<{ uid: number; gid: number; home?: string }>;

  /**
   * Which environment variable names this backend's workloads may have (Kubernetes: by the API
   * server's version, read once). Optional: a backend without it accepts any name a process can have.
   * Launch paths check names with it first, so a refusal is a 400 naming the variable, not a failed launch.
   */
  envNameRule?(): Promise<EnvNameRule>;

  /**
   * An address of spawngate's host that workloads of hub user `username` can open connections to
   * (an Enterprise Gateway launcher sends its kernel's connection info there), or undefined when the
   * backend cannot tell. Optional: docker answers with the gateway of the network the user's
   * containers join (creating the user's network if needed), or, when spawngate runs in a container
   * attached to that network (`attachContainers`), that container's address there; callers fall back
   * to configuration.
   * @throws TransientBackendError
   */
  hostAddressFor?(username: string): Promise<string | undefined>;

  /**
   * Subscribes to state changes and progress of every managed workload. Returns an unsubscribe
   * function. Optional: callers fall back to polling `state`.
   */
  watch?(listener: (e: WorkloadEvent) => void): () => void;

  /**
   * Releases connections, watchers and timers. Workloads keep running unless `stopAll`: another
   * instance (or this service after a restart) adopts them with `ensure`, finds them with `list`.
   */
  close(opts?: { stopAll?: boolean }): Promise<void>;
}
