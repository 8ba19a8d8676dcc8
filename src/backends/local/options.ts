/** The local backend's options and the type of what `createLocalBackend` returns. */
import type { Logger } from '../../logging';
import type { Backend } from '../types';
import type { LocalIdentityOptions } from './identity';

/** The local backend implements every optional method of `Backend`. */
export type LocalBackend = Backend &
  Required<Pick<Backend, 'logs' | 'signal' | 'watch' | 'runAs'>> & {
    /** A warning for start-up when workloads of several users would share one identity, else undefined. */
    sharedIdentityWarning(): string | undefined;
  };

export type LocalBackendLogger = Pick<Logger, 'debug' | 'info' | 'warn'>;

export interface LocalBackendOptions {
  /** Directory holding `<name>.json` records, `<name>.log` output and lock files. Created (mode 0700) if missing. */
  stateDir: string;
  /** Address workloads listen on and are reported at; free ports are picked on it. Default `127.0.0.1`. */
  host?: string;
  /** Where the backend logs what it does (never environments). Default: spawngate's logger. */
  logger?: LocalBackendLogger;
  /** util-linux `prlimit` used for `memoryLimitMiB`; `false` disables memory limits. Default: found on PATH. */
  prlimit?: string | false;
  /** Seconds between liveness checks of adopted processes while someone watches. Default 1. */
  livenessIntervalSeconds?: number;
  /**
   * Whose identity workloads run with (see identity.ts): the owner of `<homeRoot>/<KERNEL_USERNAME>`
   * when spawngate is root, else spawngate itself for one user, or for all with `shared`. Default:
   * none — every workload runs as spawngate itself (a library default for tests; the service always
   * passes this from its configuration).
   */
  identity?: LocalIdentityOptions;
}
