/**
 * The `docker` backend: each workload is a container named `spec.name`, labelled
 * `<prefix>.managed=true`, on a Docker Engine or any engine serving its API (podman's compat service
 * is what the tests use). The container's labels are the whole record: a restarted spawngate finds
 * its workloads by listing them, and a second `ensure` adopts what is there. Exits are learnt from the
 * engine's `/events` stream, not by polling (event-translation.ts). Each user's containers join a
 * network of their own (user-networks.ts); images are pulled by image-pull.ts.
 */
import Docker from 'dockerode';
import { logger as rootLogger } from '../../logging';
import {
  DEFAULT_STOP_GRACE_SECONDS,
  PermanentBackendError,
  TransientBackendError,
  type Backend,
  type WorkloadEvent,
  type WorkloadSpec,
  type WorkloadState,
} from '../types';
import { splitConnectionSecret } from '../connection-secret';
import { buildContainer, labelKeys, type LabelKeys } from './container-spec';
import { assertValidSpec, assertValidWorkloadName as assertValidName, isValidWorkloadName as isValidName } from '../support/names';
import { stateFromInspect, type Reachability } from './container-state';
import { engineMessage, isConflict, isNameConflict, isNotFound, statusOf, toBackendError } from './errors';
import { detectQuirks, type EngineQuirks } from './engine-quirks';
import { EventStream } from './event-stream';
import { EventTranslator } from './event-translation';
import { ensureImage } from './image-pull';
import { UserNetworks, userOf } from './user-networks';
import { ListenerSet } from '../support/listeners';
import { KeyedQueue } from '../support/keyed-queue';
import { ContainerOps } from './container-ops';
import { lastLines, timestampedText } from './log-frames';
import type { DockerBackendLogger, DockerBackendOptions } from './options';

export const DOCKER_BACKEND_NAME = 'docker';

/** The docker backend implements every optional method of `Backend`. */
export type DockerBackend = Backend & Required<Pick<Backend, 'logs' | 'signal' | 'watch'>>;

/** A start refused because a published host port is in use (retried with a new container). */
const PORT_TAKEN = /address already in use|port is already allocated/i;
const PORT_ATTEMPTS = 5;

function endpointOf(connection: Docker.DockerOptions | undefined): string {
  if (connection?.socketPath) return `unix://${connection.socketPath}`;
  if (connection?.host) return `${connection.protocol ?? 'http'}://${connection.host}:${connection.port ?? ''}`;
  return process.env.DOCKER_HOST || 'unix:///var/run/docker.sock';
}

class DockerContainerBackend implements DockerBackend {
  readonly name = DOCKER_BACKEND_NAME;
  readonly capabilities = { hostProcesses: false, overridesKey: 'docker', signal: true } as const;
  private readonly docker: Docker;
  private readonly endpoint: string;
  private readonly keys: LabelKeys;
  private readonly reach: Reachability;
  private readonly log: DockerBackendLogger;
  private readonly listeners: ListenerSet;
  /** Per-name queue so this instance never races itself on one container. */
  private readonly locks = new KeyedQueue();
  private readonly ops: ContainerOps;
  private readonly translator: EventTranslator;
  private readonly networks: UserNetworks | undefined;
  private events: EventStream | undefined;
  private closed = false;
  private quirks: Promise<EngineQuirks> | undefined;

  constructor(private readonly options: DockerBackendOptions) {
    this.docker = new Docker(options.connection);
    this.endpoint = endpointOf(options.connection);
    this.keys = labelKeys(options.labelPrefix ?? 'spawngate');
    this.reach = { publishHost: options.publishHost ?? '127.0.0.1' };
    this.log = options.logger ?? rootLogger.child({ component: 'backend-docker' });
    this.listeners = new ListenerSet(this.log);
    this.ops = new ContainerOps(this.docker, this.endpoint);
    this.translator = new EventTranslator({
      keys: this.keys,
      log: this.log,
      inspect: (name) => this.inspect(name),
      state: (name) => this.state(name),
      emit: (e) => {
        if (!this.closed) this.listeners.emit(e);
      },
      closed: () => this.closed,
    });
    if (options.networkPerUser ?? true) {
      this.networks = new UserNetworks({
        docker: this.docker,
        labelPrefix: options.labelPrefix ?? 'spawngate',
        base: options.network ?? options.labelPrefix ?? 'spawngate',
        endpoint: this.endpoint,
        log: this.log,
        needsIsolateOption: async () => (await this.engineQuirks()).podman,
        attach: options.attachContainers,
      });
    }
  }

  async ensure(spec: WorkloadSpec, onEvent?: (e: WorkloadEvent) => void): Promise<WorkloadState> {
    assertValidSpec(spec);
    const name = spec.name;
    return this.locks.run(name, async () => {
      const existing = await this.inspect(name);
      if (existing) {
        const adopted = await this.adopt(existing, onEvent, splitConnectionSecret(spec.env ?? {}).connectionInfo);
        if (adopted) return adopted;
      }
      const user = userOf(spec);
      // A profile's network override pins one network; otherwise the user's own (see user-networks.ts).
      const userNetwork =
        this.networks && user !== undefined && spec.overrides?.network === undefined ? await this.networks.ensure(user) : undefined;
      let built = await buildContainer(spec, this.options, this.keys, userNetwork);
      await ensureImage(
        { docker: this.docker, endpoint: this.endpoint, pull: this.options.pull !== false, log: this.log },
        spec.image!,
        name,
        (message) => onEvent?.({ name, type: 'progress', message }),
      );
      for (let attempt = 1; ; attempt++) {
        let container: Docker.Container;
        try {
          container = await this.docker.createContainer(built.create);
        } catch (err) {
          if (isNameConflict(err)) {
            // Created by someone else (another replica) since we looked: adopt theirs.
            const info = await this.inspect(name);
            const adopted = info && (await this.adopt(info, onEvent, built.connectionInfo));
            if (adopted) return adopted;
            throw new TransientBackendError(`container ${name} is being created or removed by someone else`, {
              cause: err,
            });
          }
          if (isNotFound(err) && userNetwork && /network/i.test(engineMessage(err)) && attempt < PORT_ATTEMPTS) {
            // The user's network was pruned since it was checked: make it again.
            this.networks!.forget(userNetwork);
            await this.networks!.ensure(user!);
            continue;
          }
          if (isNotFound(err)) {
            throw new PermanentBackendError(`image ${spec.image} not found: ${engineMessage(err)}`, { cause: err });
          }
          throw toBackendError(err, `create container ${name} from ${spec.image}`, this.endpoint);
        }
        onEvent?.({ name, type: 'progress', message: `created container ${container.id.slice(0, 12)}` });
        if (built.connectionInfo !== undefined) {
          await this.ops.copyConnectionFile(container, name, built.create.User, built.connectionInfo);
        }
        try {
          await this.ops.start(container, name);
        } catch (err) {
          // The engine picks published host ports at create and binds them at start; between the two
          // another process (an outgoing connection, a concurrent container) may take one. A new
          // container gets new ports.
          if (attempt < PORT_ATTEMPTS && PORT_TAKEN.test((err as Error).message)) {
            await this.ops.remove(container.id, name);
            this.log.info('published host port taken before start; recreating the container', { name, attempt });
            onEvent?.({ name, type: 'progress', message: 'a published host port was taken; recreating the container' });
            built = await buildContainer(spec, this.options, this.keys, userNetwork);
            continue;
          }
          throw err;
        }
        this.log.info('started container', { name, id: container.id, image: spec.image, ports: built.ports });
        onEvent?.({ name, type: 'progress', message: `started container ${container.id.slice(0, 12)}` });
        break;
      }
      return this.state(name);
    });
  }

  async hostAddressFor(username: string): Promise<string | undefined> {
    // The network a container of this user joins (see ensure); the engine's default bridge otherwise.
    const network = this.networks ? await this.networks.ensure(username) : (this.options.network ?? 'bridge');
    try {
      const info = (await this.docker.getNetwork(network).inspect()) as {
        IPAM?: { Config?: { Gateway?: string }[] };
        Containers?: Record<string, { Name?: string; IPv4Address?: string }>;
      };
      // spawngate in a container of its own (attach_containers): its address on that network, not the host's.
      const own = this.options.attachContainers?.[0];
      if (own !== undefined) {
        const entry = Object.entries(info.Containers ?? {}).find(([id, c]) => c.Name === own || id.startsWith(own));
        return entry?.[1].IPv4Address?.replace(/\/\d+$/, '') || undefined;
      }
      return info.IPAM?.Config?.find((c) => c.Gateway)?.Gateway;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw toBackendError(err, `inspect network ${network}`, this.endpoint);
    }
  }

  async state(name: string): Promise<WorkloadState> {
    if (!isValidName(name)) return { name: String(name), phase: 'missing', reason: 'invalid workload name' };
    const info = await this.inspect(name);
    if (!info) return { name, phase: 'missing' };
    if (!this.isOurs(info)) return { name, phase: 'missing', reason: 'a container of that name is not managed by spawngate' };
    return stateFromInspect(name, info, this.keys, this.reach);
  }

  async stop(name: string, opts?: { graceSeconds?: number }): Promise<void> {
    assertValidName(name);
    const grace = Math.max(0, Math.ceil(opts?.graceSeconds ?? DEFAULT_STOP_GRACE_SECONDS));
    await this.locks.run(name, async () => {
      const info = await this.inspect(name);
      if (!info) return;
      if (!this.isOurs(info)) {
        throw new PermanentBackendError(`refusing to stop container ${name}: it is not managed by spawngate`);
      }
      const container = this.docker.getContainer(info.Id);
      try {
        await container.stop({ t: grace });
      } catch (err) {
        // 304: already stopped; 404: already gone.
        if (statusOf(err) !== 304 && !isNotFound(err)) throw toBackendError(err, `stop container ${name}`, this.endpoint);
      }
      await this.ops.remove(info.Id, name);
      this.log.info('removed container', { name, id: info.Id });
    });
  }

  async list(): Promise<WorkloadState[]> {
    let entries: Docker.ContainerInfo[];
    try {
      entries = await this.docker.listContainers({ all: true, filters: { label: [`${this.keys.managed}=true`] } });
    } catch (err) {
      throw toBackendError(err, 'list containers', this.endpoint);
    }
    const states = await Promise.all(
      entries.map(async (c) => {
        const name = c.Labels?.[this.keys.name] ?? (c.Names?.[0] ?? '').replace(/^\//, '');
        const info = await this.inspect(c.Id);
        return info && this.isOurs(info) ? stateFromInspect(name, info, this.keys, this.reach) : undefined;
      }),
    );
    return states.filter((s): s is WorkloadState => !!s);
  }

  async logs(name: string, lines: number): Promise<string[]> {
    assertValidName(name);
    const n = Math.max(0, Math.floor(lines));
    if (n === 0) return [];
    try {
      const { tailDropsPartialLines } = await this.engineQuirks();
      // A few lines more than asked: a line written in pieces counts as several for the engine's tail.
      const tail = tailDropsPartialLines ? {} : { tail: n + 16 };
      const buf = (await this.docker
        .getContainer(name)
        .logs({ stdout: true, stderr: true, ...tail, timestamps: true, follow: false })) as unknown as Buffer;
      return lastLines(timestampedText(Buffer.isBuffer(buf) ? buf : Buffer.from(String(buf))), n);
    } catch (err) {
      if (isNotFound(err)) return [];
      throw toBackendError(err, `read logs of ${name}`, this.endpoint);
    }
  }

  async signal(name: string, sig: NodeJS.Signals): Promise<void> {
    assertValidName(name);
    const info = await this.inspect(name);
    if (!info || !this.isOurs(info) || !info.State?.Running) {
      throw new PermanentBackendError(`workload ${name} is not running`);
    }
    try {
      await this.docker.getContainer(info.Id).kill({ signal: sig });
    } catch (err) {
      if (isNotFound(err) || isConflict(err)) throw new PermanentBackendError(`workload ${name} is not running`, { cause: err });
      throw toBackendError(err, `send ${sig} to ${name}`, this.endpoint);
    }
  }

  watch(listener: (e: WorkloadEvent) => void): () => void {
    if (this.closed) return () => undefined;
    const unsubscribe = this.listeners.add(listener);
    this.events ??= new EventStream({
      docker: this.docker,
      label: `${this.keys.managed}=true`,
      log: this.log,
      reconnectDelayMs: this.options.reconnectDelayMs ?? 500,
      onEvent: (e) => this.translator.onEngineEvent(e),
    });
    return () => {
      unsubscribe();
      if (this.listeners.size === 0) {
        this.events?.close();
        this.events = undefined;
      }
    };
  }

  async close(opts?: { stopAll?: boolean }): Promise<void> {
    if (opts?.stopAll) {
      const states = await this.list();
      await Promise.all(states.map((s) => this.stop(s.name)));
      await this.networks?.prune();
    }
    this.closed = true;
    this.events?.close();
    this.events = undefined;
    this.listeners.clear();
  }

  // ——— internals ———

  /** The engine's quirks, asked once (and again after a failure, e.g. while the daemon was down). */
  private engineQuirks(): Promise<EngineQuirks> {
    this.quirks ??= detectQuirks(this.docker).catch((err: unknown) => {
      this.quirks = undefined;
      throw err;
    });
    return this.quirks;
  }

  private isOurs(info: Docker.ContainerInspectInfo): boolean {
    return info.Config?.Labels?.[this.keys.managed] === 'true';
  }

  private inspect(nameOrId: string): Promise<Docker.ContainerInspectInfo | undefined> {
    return this.ops.inspect(nameOrId);
  }

  /**
   * Adopts an existing container of the same name: running → its state; created → started; exited →
   * removed (the caller then creates a fresh one, as `ensure` of an exited workload starts anew).
   */
  private async adopt(
    info: Docker.ContainerInspectInfo,
    onEvent?: (e: WorkloadEvent) => void,
    connectionInfo?: string,
  ): Promise<WorkloadState | undefined> {
    const name = info.Name.replace(/^\//, '');
    if (!this.isOurs(info)) {
      throw new PermanentBackendError(
        `a container named ${name} already exists and is not managed by spawngate (no ${this.keys.managed}=true label)`,
      );
    }
    let state = stateFromInspect(name, info, this.keys, this.reach);
    if (state.phase === 'exited') {
      await this.ops.remove(info.Id, name);
      return undefined;
    }
    if (state.phase === 'pending' && info.State?.Status === 'created') {
      const container = this.docker.getContainer(info.Id);
      // The creator may have died before copying the connection file in: copy it (again) first.
      if (connectionInfo !== undefined) await this.ops.copyConnectionFile(container, name, info.Config?.User, connectionInfo);
      await this.ops.start(container, name);
      state = await this.state(name);
    }
    onEvent?.({ name, type: 'progress', message: `adopted container ${info.Id.slice(0, 12)}` });
    return state;
  }

}

/** A backend running workloads as containers through the Docker Engine API; see DockerBackendOptions. */
export function createDockerBackend(options: DockerBackendOptions = {}): DockerBackend {
  return new DockerContainerBackend(options);
}
