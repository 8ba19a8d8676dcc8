/**
 * The docker backend's options and the per-spec overrides it understands (a profile's `docker:`
 * block reaches the backend as `spec.overrides`).
 */
import type Docker from 'dockerode';
import { WORKLOAD_USER_LABEL } from '../types';
import type { Logger } from '../../logging';

export type DockerBackendLogger = Pick<Logger, 'debug' | 'info' | 'warn'>;

export interface DockerBackendOptions {
  /**
   * How to reach the engine: dockerode's connection options (`socketPath`, or `host`/`port`/`protocol`
   * with TLS files). Default: `DOCKER_HOST` when set (unix:// or tcp://), else `/var/run/docker.sock`.
   */
  connection?: Docker.DockerOptions;
  /**
   * A user-defined network to attach every container to. spawngate must then be on that network too:
   * workloads are reported at their address on it with their container ports, and nothing is
   * published. Default: none — each spec port is published on `publishHost` with a host port chosen by
   * the engine (or, for a spec port of 0, by spawngate) and reported there.
   */
  network?: string;
  /**
   * Each user's containers join a network of their own (`<network or labelPrefix>-<user>-<hash>`,
   * created on demand), so that they cannot reach another user's (see user-networks.ts). A profile's
   * `network` override still pins one network. Default true.
   */
  networkPerUser?: boolean;
  /**
   * Containers (names or ids) connected to every user network as it is created: spawngate's own and
   * the hub's, when they run in containers and reach workloads by address. Default none.
   */
  attachContainers?: string[];
  /** Host address published ports bind to and are reported at when `network` is not set. Default `127.0.0.1`. */
  publishHost?: string;
  /**
   * Host directory holding the users' homes (`<homeRoot>/<user>`), e.g. SPAWNGATE_HOME_ROOT. When set,
   * the user's home is bind-mounted read-write into the container. Default: no home mount.
   */
  homeRoot?: string;
  /** Where `homeRoot` appears inside containers: `<homeMount>/<user>`. Default: `homeRoot` (the same path). */
  homeMount?: string;
  /**
   * uid the workload runs as. Default: the owner of the user's home directory. Root (0) is refused
   * unless `allowRoot`.
   */
  runAsUser?: number;
  /** gid the workload runs as. Default: the group of the user's home directory, else `runAsUser`. */
  runAsGroup?: number;
  /** Permits uid 0 (for tests on machines where everything belongs to root). Default false. */
  allowRoot?: boolean;
  /** Extra bind mounts in Docker's `host:container[:ro]` form, added to every container. Default none. */
  extraBinds?: string[];
  /** Runs an init process (docker-init / podman's catatonit) as PID 1 to forward signals and reap. Default true. */
  init?: boolean;
  /** Prefix of the labels spawngate puts on its containers (`<prefix>.managed=true`). Default `spawngate`. */
  labelPrefix?: string;
  /** Pull an image that is not present before creating the container. Default true. */
  pull?: boolean;
  /** Where the backend logs what it does (never environments). Default: spawngate's logger. */
  logger?: DockerBackendLogger;
  /** First delay before the event stream reconnects, in ms; doubles up to 30 s. Default 500. */
  reconnectDelayMs?: number;
}

/**
 * Keys a profile may set in `spec.overrides` for this backend. Anything else is refused (a typo must
 * not silently do nothing).
 */
export interface DockerSpecOverrides {
  /** Home directory name under `homeRoot` (default: the spec's `KERNEL_USERNAME`, else its `spawngate/user` label). */
  homeUser?: string;
  runAsUser?: number;
  runAsGroup?: number;
  /** Network for this workload instead of the backend's `network`. */
  network?: string;
  /** Extra bind mounts for this workload, `host:container[:ro]`. */
  binds?: string[];
  /** Extra labels on the container. */
  labels?: Record<string, string>;
}

export const OVERRIDE_KEYS: readonly (keyof DockerSpecOverrides)[] = [
  'homeUser',
  'runAsUser',
  'runAsGroup',
  'network',
  'binds',
  'labels',
];

/** The spec label naming the user a workload belongs to (set by the server and kernel lifecycles). */
export const USER_LABEL = WORKLOAD_USER_LABEL;
