/**
 * A network per user, so that one user's containers cannot reach another's (issue 11, "Kernel
 * traffic"). Each user's workloads join a bridge network of their own, created on demand, labelled
 * `<prefix>.managed=true` and named after the user's label value plus a hash of the real name
 * (distinct names never share one, e.g. "Alice" and "alice"). spawngate reaches workloads from the
 * host (their address on the network, or published ports on 127.0.0.1), which no network blocks; when
 * spawngate and the hub run in containers themselves, those containers (`attach`) join every user's
 * network — they must reach each user, users must not reach each other.
 *
 * Docker isolates bridge networks from each other by default. podman (netavark) routes between them
 * unless a network is created with `isolate=true`, which then drops traffic between isolated networks:
 * that option is set on podman. Networks stay after their last container stops (one per user, reused);
 * `prune` removes the empty ones.
 */
import { createHash } from 'node:crypto';
import type Docker from 'dockerode';
import { PermanentBackendError, type WorkloadSpec } from '../types';
import { engineMessage, isConflict, isNotFound, toBackendError } from './errors';
import { USER_LABEL, type DockerBackendLogger } from './options';

export interface UserNetworkOptions {
  docker: Docker;
  /** Label prefix: networks carry `<prefix>.managed=true` and `<prefix>.user=<label value>`. */
  labelPrefix: string;
  /** Network names start with this (the configured `network`, else the label prefix). */
  base: string;
  endpoint: string;
  log: DockerBackendLogger;
  /** Whether the engine needs `isolate=true` to keep networks apart (podman). */
  needsIsolateOption: () => Promise<boolean>;
  /**
   * Containers connected to every user network (spawngate's own, the hub's proxy), when they run in
   * containers themselves and must reach workloads by address. Default none.
   */
  attach?: string[];
}

/** The hub user a spec belongs to: KERNEL_USERNAME (the real name), else its user label. */
export function userOf(spec: WorkloadSpec): string | undefined {
  return spec.env?.KERNEL_USERNAME ?? spec.labels?.[USER_LABEL];
}

export class UserNetworks {
  /** Names known to exist (created or checked by this instance). */
  private readonly known = new Set<string>();
  private readonly inFlight = new Map<string, Promise<void>>();

  constructor(private readonly o: UserNetworkOptions) {}

  get managedLabel(): string {
    return `${this.o.labelPrefix}.managed`;
  }

  /**
   * The network of `user`: `<base>-<readable part>-<hash of the exact name>`, a valid network name, distinct
   * per user through the hash. Kept as it was when user labels were still lossy copies of the name, so
   * users' existing networks keep their names; the exact name is the network's user label.
   */
  nameFor(user: string): string {
    const hash = createHash('sha256').update(user).digest('hex').slice(0, 8);
    const label = user.toLowerCase().replace(/[^a-z0-9._-]/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 40);
    return `${this.o.base}-${label ? `${label}-` : ''}${hash}`;
  }

  /** Makes sure the user's network exists (once per name and instance); returns its name. */
  async ensure(user: string): Promise<string> {
    const name = this.nameFor(user);
    if (this.known.has(name)) return name;
    let pending = this.inFlight.get(name);
    if (!pending) {
      pending = this.create(name, user).finally(() => this.inFlight.delete(name));
      this.inFlight.set(name, pending);
    }
    await pending;
    return name;
  }

  /** Forgets a network the engine no longer has (a create then failed with "network not found"). */
  forget(name: string): void {
    this.known.delete(name);
  }

  private async create(name: string, user: string): Promise<void> {
    const isolate = await this.o.needsIsolateOption();
    try {
      await this.o.docker.createNetwork({
        Name: name,
        Driver: 'bridge',
        CheckDuplicate: true,
        Labels: { [this.managedLabel]: 'true', [`${this.o.labelPrefix}.user`]: user },
        ...(isolate ? { Options: { isolate: 'true' } } : {}),
      });
      this.o.log.info('created user network', { network: name });
    } catch (err) {
      // Docker says 409 for an existing name; podman 4 says 409 or 500 "network name … already used".
      if (!(isConflict(err) || /already (used|exists)/i.test(String((err as Error).message)))) {
        throw toBackendError(err, `create network ${name}`, this.o.endpoint);
      }
      await this.checkOurs(name);
    }
    for (const container of this.o.attach ?? []) await this.connect(name, container);
    this.known.add(name);
  }

  private async connect(network: string, container: string): Promise<void> {
    try {
      await this.o.docker.getNetwork(network).connect({ Container: container });
    } catch (err) {
      if (/already (exists|connected|attached)/i.test(engineMessage(err)) || isConflict(err)) return;
      if (isNotFound(err)) {
        throw new PermanentBackendError(
          `cannot connect container ${container} (docker.attach_containers) to network ${network}: ${engineMessage(err)}`,
          { cause: err },
        );
      }
      throw toBackendError(err, `connect ${container} to network ${network}`, this.o.endpoint);
    }
  }

  private async checkOurs(name: string): Promise<void> {
    let info: { Labels?: Record<string, string> };
    try {
      info = (await this.o.docker.getNetwork(name).inspect()) as { Labels?: Record<string, string> };
    } catch (err) {
      if (isNotFound(err)) return; // removed meanwhile; the container create will say so and be retried
      throw toBackendError(err, `inspect network ${name}`, this.o.endpoint);
    }
    if (info.Labels?.[this.managedLabel] !== 'true') {
      throw new PermanentBackendError(
        `a network named ${name} already exists and is not managed by spawngate (no ${this.managedLabel}=true label)`,
      );
    }
  }

  /** Removes spawngate's user networks that no container uses any more. */
  async prune(): Promise<void> {
    const networks = (await this.o.docker.listNetworks({ filters: { label: [`${this.managedLabel}=true`] } })) as {
      Name: string;
    }[];
    for (const n of networks) {
      const info = (await this.o.docker.getNetwork(n.Name).inspect().catch(() => undefined)) as
        | { Containers?: Record<string, unknown> }
        | undefined;
      if (!info || Object.keys(info.Containers ?? {}).length > 0) continue;
      await this.o.docker
        .getNetwork(n.Name)
        .remove()
        .catch((err: unknown) => this.o.log.debug('user network not removed', { network: n.Name, error: err }));
      this.known.delete(n.Name);
    }
  }
}
