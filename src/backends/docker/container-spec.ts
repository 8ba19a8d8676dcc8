/**
 * Turning a `WorkloadSpec` into Docker's container-create body: labels, `{port}` substitution and port
 * publishing, resources (NanoCpus, CpuShares, Memory, MemoryReservation, GPU DeviceRequests), the
 * user's home bind mount, the uid/gid (never root unless allowed), and the hardening every workload
 * gets (no restart, no-new-privileges, all capabilities dropped).
 */
import net from 'node:net';
import path from 'node:path';
import type Docker from 'dockerode';
import { PermanentBackendError, type WorkloadResources, type WorkloadSpec } from '../types';
import { OVERRIDE_KEYS, USER_LABEL, type DockerBackendOptions, type DockerSpecOverrides } from './options';
import { substitutePorts } from '../port-placeholders';
import { splitConnectionSecret } from '../connection-secret';
import { workloadIdentity, type WorkloadIdentity } from '../support/workload-identity';

/** Labels derived from the label prefix. */
export interface LabelKeys {
  managed: string;
  name: string;
  kind: string;
  /** JSON `{portName: containerPort}`, so state() can report ports by name. */
  ports: string;
  /**
   * The user-defined network a workload was attached to: inspect cannot be trusted to say (podman
   * reports NetworkMode "bridge" for every bridge network).
   */
  network: string;
  /** `true` when the container's ports are published on the host (it is reached there, whatever its network). */
  published: string;
}

export function labelKeys(prefix: string): LabelKeys {
  return {
    managed: `${prefix}.managed`,
    name: `${prefix}.name`,
    kind: `${prefix}.kind`,
    ports: `${prefix}.ports`,
    network: `${prefix}.network`,
    published: `${prefix}.published`,
  };
}

/** Picks a free TCP port on `host`; all listeners stay open until every port is chosen (distinct ports). */
async function freePorts(count: number, host: string): Promise<number[]> {
  const servers: net.Server[] = [];
  try {
    const out: number[] = [];
    for (let i = 0; i < count; i++) {
      const server = net.createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host, port: 0, exclusive: true }, resolve);
      });
      out.push((server.address() as net.AddressInfo).port);
    }
    return out;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
}

/**
 * Container ports by name: a given port is used as is; 0 becomes a free port of this host, used as the
 * container port *and* (when publishing) the host port, so a workload told `{port}` listens on the
 * number it is reached at.
 */
export async function resolveContainerPorts(
  ports: Record<string, number> | undefined,
  host: string,
): Promise<{ ports: Record<string, number>; picked: Set<string> }> {
  const out: Record<string, number> = {};
  const zero: string[] = [];
  for (const [name, value] of Object.entries(ports ?? {})) {
    if (value === 0) zero.push(name);
    else if (Number.isInteger(value) && value > 0 && value < 65536) out[name] = value;
    else {
      throw new PermanentBackendError(
        `invalid port ${JSON.stringify(value)} for "${name}": use 0 to pick one, or 1-65535`,
      );
    }
  }
  const free = await freePorts(zero.length, host);
  zero.forEach((name, i) => (out[name] = free[i]!));
  const seen = new Map<number, string>();
  for (const [name, port] of Object.entries(out)) {
    const other = seen.get(port);
    if (other) throw new PermanentBackendError(`ports "${other}" and "${name}" are both ${port}`);
    seen.set(port, name);
  }
  return { ports: out, picked: new Set(zero) };
}


/** Validates `spec.overrides` against the keys this backend understands. */
export function parseOverrides(raw: Record<string, unknown> | undefined): DockerSpecOverrides {
  if (!raw) return {};
  const unknown = Object.keys(raw).filter((k) => !(OVERRIDE_KEYS as readonly string[]).includes(k));
  if (unknown.length) {
    throw new PermanentBackendError(
      `unsupported docker override(s) ${unknown.join(', ')}; supported: ${OVERRIDE_KEYS.join(', ')}`,
    );
  }
  const o = raw as DockerSpecOverrides;
  const isId = (v: unknown) => v === undefined || (Number.isInteger(v) && (v as number) >= 0);
  if (!isId(o.runAsUser) || !isId(o.runAsGroup)) {
    throw new PermanentBackendError('docker overrides runAsUser/runAsGroup must be non-negative integers');
  }
  if (o.homeUser !== undefined && typeof o.homeUser !== 'string') {
    throw new PermanentBackendError('docker override homeUser must be a string');
  }
  if (o.network !== undefined && typeof o.network !== 'string') {
    throw new PermanentBackendError('docker override network must be a string');
  }
  if (o.binds !== undefined && !(Array.isArray(o.binds) && o.binds.every((b) => typeof b === 'string'))) {
    throw new PermanentBackendError('docker override binds must be a list of "host:container[:ro]" strings');
  }
  return o;
}

interface Identity {
  uid: number;
  gid: number;
  /** Host and container path of the user's home, when mounted. */
  home?: { host: string; container: string };
}

/** The home mount and uid/gid for a spec: the shared home-owner rule, unless the profile or backend pins a uid. */
async function resolveIdentity(
  spec: WorkloadSpec,
  overrides: DockerSpecOverrides,
  options: DockerBackendOptions,
): Promise<Identity> {
  let home: Identity['home'];
  let owner: WorkloadIdentity | undefined;
  // KERNEL_USERNAME is the user's exact name (DESIGN §1, set for servers and kernels), as is the user
  // label; workloads created before the label carried the exact name had a lossy copy there.
  const user = overrides.homeUser ?? spec.env.KERNEL_USERNAME ?? spec.labels[USER_LABEL];
  if (options.homeRoot && user !== undefined) {
    // Root is judged below on the uid actually used (a profile may pin one for a root-owned home).
    owner = await workloadIdentity(options.homeRoot, user, { allowRoot: true });
    home = { host: owner.home, container: path.posix.join(options.homeMount ?? path.resolve(options.homeRoot), user) };
  }
  const uid = overrides.runAsUser ?? options.runAsUser ?? owner?.uid;
  if (uid === undefined) {
    throw new PermanentBackendError(
      `cannot choose a uid for ${spec.name}: set the docker backend's runAsUser, or homeRoot with a ` +
        `KERNEL_USERNAME (or "${USER_LABEL}" label) whose home directory exists`,
    );
  }
  const gid = overrides.runAsGroup ?? options.runAsGroup ?? (owner && owner.uid === uid ? owner.gid : uid);
  if ((uid === 0 || gid === 0) && !options.allowRoot) {
    throw new PermanentBackendError(
      `refusing to run ${spec.name} as root (uid ${uid}, gid ${gid})` +
        (home && owner?.uid === 0 ? `: its home ${home.host} belongs to root` : '') +
        '; set runAsUser/runAsGroup, fix the home directory owner, or set docker.allow_root',
    );
  }
  return { uid, gid, home };
}

/** HostConfig resource fields for the spec's requests and limits. */
export function resourceConfig(r: WorkloadResources | undefined): Partial<Docker.HostConfig> {
  const out: Partial<Docker.HostConfig> = {};
  if (!r) return out;
  const positive = (v: number | undefined, what: string) => {
    if (v === undefined) return false;
    if (!Number.isFinite(v) || v <= 0) throw new PermanentBackendError(`${what} must be a positive number, got ${v}`);
    return true;
  };
  if (positive(r.cpuLimit, 'cpuLimit')) out.NanoCpus = Math.round(r.cpuLimit! * 1e9);
  if (positive(r.cpuRequest, 'cpuRequest')) out.CpuShares = Math.max(2, Math.round(r.cpuRequest! * 1024));
  if (positive(r.memoryLimitMiB, 'memoryLimitMiB')) {
    out.Memory = Math.floor(r.memoryLimitMiB! * 1024 * 1024);
    out.MemorySwap = out.Memory; // no swap beyond the limit: over it means OOM-killed, as on Kubernetes
  }
  if (positive(r.memoryRequestMiB, 'memoryRequestMiB')) {
    out.MemoryReservation = Math.floor(r.memoryRequestMiB! * 1024 * 1024);
  }
  if (r.gpuLimit !== undefined && r.gpuLimit !== 0) {
    if (!Number.isInteger(r.gpuLimit) || r.gpuLimit < 0) {
      throw new PermanentBackendError(`gpuLimit must be a non-negative integer, got ${r.gpuLimit}`);
    }
    out.DeviceRequests = [{ Driver: 'nvidia', Count: r.gpuLimit, Capabilities: [['gpu']] }];
  }
  return out;
}

export interface BuiltContainer {
  create: Docker.ContainerCreateOptions;
  /** Container ports by name (what `{port}` became). */
  ports: Record<string, number>;
  /** A kernel's connection JSON, lifted out of the environment: copied in as a file before start. */
  connectionInfo?: string;
}

/**
 * The full create body for a spec. `userNetwork` is the user's own network (user-networks.ts): the
 * container joins it, and is still reached the configured way — at its address when a `network` is
 * configured (the user's network replaces it), else at ports published on `publishHost`.
 */
export async function buildContainer(
  spec: WorkloadSpec,
  options: DockerBackendOptions,
  keys: LabelKeys,
  userNetwork?: string,
): Promise<BuiltContainer> {
  if (!spec.image) throw new PermanentBackendError(`workload ${spec.name} has no image (the docker backend needs one)`);
  if (!Array.isArray(spec.command) || spec.command.length === 0) {
    throw new PermanentBackendError(`workload ${spec.name} has an empty command`);
  }
  const overrides = parseOverrides(spec.overrides);
  const configured = overrides.network ?? options.network;
  const network = overrides.network ?? userNetwork ?? options.network;
  const publish = !configured;
  const publishHost = options.publishHost ?? '127.0.0.1';
  const { ports, picked } = await resolveContainerPorts(spec.ports, publish ? publishHost : '0.0.0.0');
  const identity = await resolveIdentity(spec, overrides, options);

  // The connection info (with the kernel's key) never becomes part of the container's environment.
  const { env: visibleEnv, connectionInfo } = splitConnectionSecret(spec.env ?? {});
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(visibleEnv)) {
    if (k.includes('=') || !k) throw new PermanentBackendError(`invalid environment variable name ${JSON.stringify(k)}`);
    env[k] = substitutePorts(String(v), ports);
  }
  if (identity.home && env.HOME === undefined) env.HOME = identity.home.container;

  // The home is a structured mount, not a `host:container` bind string: user names may contain ':'.
  const mounts: Docker.MountSettings[] = identity.home ? [{ Type: 'bind', Source: identity.home.host, Target: identity.home.container, ReadOnly: false }] : [];
  const binds = [...(options.extraBinds ?? []), ...(overrides.binds ?? [])];

  const exposed: Record<string, object> = {};
  const bindings: Record<string, { HostIp: string; HostPort: string }[]> = {};
  for (const [name, port] of Object.entries(ports)) {
    const key = `${port}/tcp`;
    exposed[key] = {};
    if (publish) bindings[key] = [{ HostIp: publishHost, HostPort: picked.has(name) ? String(port) : '' }];
  }

  const labels: Record<string, string> = {
    ...(overrides.labels ?? {}),
    ...spec.labels,
    [keys.managed]: 'true',
    [keys.name]: spec.name,
    [keys.kind]: spec.kind,
    [keys.ports]: JSON.stringify(ports),
    ...(publish ? { [keys.published]: 'true' } : { [keys.network]: network! }),
  };

  const hostConfig: Docker.HostConfig = {
    ...resourceConfig(spec.resources),
    Binds: binds.length ? binds : undefined,
    Mounts: mounts.length ? mounts : undefined,
    PortBindings: publish ? bindings : undefined,
    NetworkMode: network,
    RestartPolicy: { Name: 'no' },
    SecurityOpt: ['no-new-privileges'],
    CapDrop: ['ALL'],
    Init: options.init ?? true,
  };

  return {
    ports,
    connectionInfo,
    create: {
      name: spec.name,
      Image: spec.image,
      Cmd: spec.command.map((arg) => substitutePorts(String(arg), ports)),
      Env: Object.entries(env).map(([k, v]) => `${k}=${v}`),
      WorkingDir: spec.workingDir ?? identity.home?.container,
      User: `${identity.uid}:${identity.gid}`,
      Labels: labels,
      ExposedPorts: exposed,
      HostConfig: hostConfig,
    },
  };
}
