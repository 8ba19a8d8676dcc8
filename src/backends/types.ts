/**
 * The one plug-point for where workloads run. A backend makes a workload exist, reports its state and
 * removes it; it knows nothing of HTTP, users' quotas or retries — the caller owns timeouts, retries
 * and polling (STYLE: "the core owns timeouts").
 */

/** The `spawngate/user` label value for a user name: a valid label value (the real name is in KERNEL_USERNAME). */
export function userLabelValue(username: string): string {
  return username.toLowerCase().replace(/[^a-z0-9._-]/g, '-').slice(0, 63);
}

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

/** Thrown by a backend for a capability it does not have (never silently do nothing). */
export class UnsupportedError extends Error {
  override readonly name = 'UnsupportedError';
}

/** Thrown for failures worth retrying (daemon briefly unreachable, API 5xx, conflicts in flight). */
export class TransientBackendError extends Error {
  override readonly name = 'TransientBackendError';
}

/** Thrown for failures a retry cannot fix (bad image, invalid spec, command not found). */
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
  /** Which profile block (`docker:` or `kubernetes:`) holds this backend's overrides; none for local. */
  readonly overridesKey?: 'docker' | 'kubernetes';
}

export interface Backend {
  /** Constant backend name: 'local' | 'docker' | 'kubernetes'. For logs and labels, never for branching. */
  readonly name: string;

  /** What this backend's workloads are like (see `BackendCapabilities`). Constant for the instance. */
  readonly capabilities: BackendCapabilities;

  /**
   * Makes the workload exist. Idempotent: if a workload with `spec.name` that this backend created
   * already exists (running or pending), it is adopted and its current state returned — never a second
   * one. Returns once the backend accepted the workload (phase `pending` or `running`), not when the
   * process inside is ready; readiness is the caller's check.
   * @throws PermanentBackendError | TransientBackendError
   */
  ensure(spec: WorkloadSpec, onEvent?: (e: WorkloadEvent) => void): Promise<WorkloadState>;

  /**
   * Current state of a workload by name. Never throws for an unknown name: returns phase `missing`.
   * Pure read; may be called at any rate by the caller.
   */
  state(name: string): Promise<WorkloadState>;

  /**
   * Stops and removes the workload: graceful signal, then forced after `graceSeconds`. Idempotent:
   * stopping a missing or already exited workload resolves. Resolves when the workload is gone.
   */
  stop(name: string, opts?: { graceSeconds?: number }): Promise<void>;

  /** Every workload this backend manages (by its labels), for reconciliation at start-up. */
  list(): Promise<WorkloadState[]>;

  /** Last lines of the workload's output (stdout and stderr), oldest first. Optional. */
  logs?(name: string, lines: number): Promise<string[]>;

  /** Sends a signal to the workload's main process (used for kernel interrupts). Optional. */
  signal?(name: string, signal: NodeJS.Signals): Promise<void>;

  /**
   * Subscribes to state changes and progress of every managed workload. Returns an unsubscribe
   * function. Optional: callers fall back to polling `state`.
   */
  watch?(listener: (e: WorkloadEvent) => void): () => void;

  /** Releases connections, watchers and timers. Workloads keep running unless `stopAll`. */
  close(opts?: { stopAll?: boolean }): Promise<void>;
}
