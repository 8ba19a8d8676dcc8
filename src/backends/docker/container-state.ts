/**
 * Reading a container's inspect (or list) data as a `WorkloadState`: phase from the engine's status,
 * exit code and a reason a person can act on ("OOMKilled", "exited with status 137 (SIGKILL)"), and
 * where the workload is reached (published host ports, or its address on the user-defined network).
 */
import { constants } from 'node:os';
import type Docker from 'dockerode';
import type { WorkloadPhase, WorkloadState } from '../types';
import type { LabelKeys } from './container-spec';

const SIGNAL_NAMES = new Map<number, string>(
  Object.entries(constants.signals).map(([name, n]) => [n, name] as [number, string]),
);

/**
 * A person-readable reason for an exit status (128+N is "killed by signal N" by convention). Engines
 * that cannot detect OOM kills (podman on cgroup v1 reports OOMKilled=false) still get a hint when a
 * SIGKILLed container had a memory limit.
 */
export function describeExit(code: number, oomKilled = false, error?: string, memoryLimit?: number): string {
  if (oomKilled) return 'OOMKilled';
  if (error) return `failed to start: ${error}`;
  const signal = code > 128 ? SIGNAL_NAMES.get(code - 128) : undefined;
  const hint =
    signal === 'SIGKILL' && memoryLimit && memoryLimit > 0
      ? `; it may have exceeded its memory limit of ${Math.round(memoryLimit / 1048576)} MiB`
      : '';
  return `exited with status ${code}${signal ? ` (${signal}${hint})` : ''}`;
}

export function phaseOf(status: string | undefined): WorkloadPhase {
  switch (status) {
    case 'running':
    case 'paused':
      return 'running';
    case 'created':
    case 'configured':
    case 'initialized':
    case 'restarting':
      return 'pending';
    default:
      return 'exited'; // exited, dead, removing, stopped
  }
}

/** `{portName: containerPort}` as recorded in our label. */
export function containerPortsOf(labels: Record<string, string> | undefined, keys: LabelKeys): Record<string, number> {
  try {
    const parsed = JSON.parse(labels?.[keys.ports] ?? '{}') as Record<string, unknown>;
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(parsed)) if (typeof v === 'number') out[k] = v;
    return out;
  } catch {
    return {};
  }
}

type PortMap = Record<string, { HostIp?: string; HostPort?: string }[] | null | undefined>;

export interface Reachability {
  /** Host address published ports are reported at. */
  publishHost: string;
}

const ENGINE_NETWORK_MODES = new Set(['', 'default', 'bridge', 'host', 'none', 'private', 'slirp4netns', 'pasta']);

/**
 * Host and ports by name for a running container: on a user-defined network, its address there and
 * the container ports; otherwise the published host ports on `publishHost`.
 */
function whereReached(
  info: Docker.ContainerInspectInfo,
  ports: Record<string, number>,
  reach: Reachability,
  recordedNetwork: string | undefined,
  isPublished: boolean,
): { host?: string; ports?: Record<string, number> } {
  const mode = info.HostConfig?.NetworkMode ?? '';
  // Our label names the network; Docker's NetworkMode does too, podman's says "bridge" for every one.
  // Published (our label says so, also on a user's network): reached on the host, not on the network.
  const network = isPublished
    ? undefined
    : recordedNetwork || (!ENGINE_NETWORK_MODES.has(mode) && !mode.startsWith('container:') ? mode : undefined);
  if (network) {
    const networks = (info.NetworkSettings?.Networks ?? {}) as Record<string, { IPAddress?: string }>;
    const ip = networks[network]?.IPAddress;
    return { host: ip || info.Name.replace(/^\//, ''), ports };
  }
  const published = (info.NetworkSettings?.Ports ?? {}) as PortMap;
  const out: Record<string, number> = {};
  for (const [name, port] of Object.entries(ports)) {
    const hostPort = Number(published[`${port}/tcp`]?.find((b) => b.HostPort)?.HostPort);
    if (hostPort > 0) out[name] = hostPort;
  }
  return { host: reach.publishHost, ports: out };
}

/**
 * The container's own IP: on the network our label names (a user's network), else on the only or
 * first network it joined (published containers sit on the engine's bridge or the user's network).
 */
function ownAddress(info: Docker.ContainerInspectInfo, recordedNetwork: string | undefined): string | undefined {
  const networks = (info.NetworkSettings?.Networks ?? {}) as Record<string, { IPAddress?: string }>;
  const named = recordedNetwork ? networks[recordedNetwork]?.IPAddress : undefined;
  return named || Object.values(networks).find((n) => n.IPAddress)?.IPAddress || undefined;
}

/** The state an inspect describes. */
export function stateFromInspect(
  name: string,
  info: Docker.ContainerInspectInfo,
  keys: LabelKeys,
  reach: Reachability,
): WorkloadState {
  const labels = info.Config?.Labels ?? {};
  const phase = phaseOf(info.State?.Status);
  const state: WorkloadState = {
    name,
    phase,
    labels,
    ref: { id: info.Id, image: info.Config?.Image, createdAt: info.Created },
  };
  if (phase === 'running') {
    Object.assign(state, whereReached(info, containerPortsOf(labels, keys), reach, labels[keys.network], labels[keys.published] === 'true'));
    const address = ownAddress(info, labels[keys.network]);
    if (address) state.address = address;
  }
  if (phase === 'exited') {
    const code = info.State?.ExitCode ?? -1;
    state.exitCode = code;
    state.reason = describeExit(code, info.State?.OOMKilled, info.State?.Error || undefined, info.HostConfig?.Memory);
  }
  return state;
}

