/**
 * One `KernelClient` per kernel per API process, created on the first websocket and closed when the
 * kernel ends. Activity (execution state, last activity, connection counts) is written back to the
 * database in batches so culling and models see it from any replica.
 */
import { randomUUID } from 'node:crypto';
import type { WebSocket } from 'ws';
import { recordKernelActivity, type Db, type KernelRow, type SecretBox } from '../../db';
import type { Logger } from '../../logging';
import { KernelClient, type ExecutionState, type KernelClientOptions } from '../channels';
import { connectionInfo, kernelAddress } from './connection-files';

interface Entry {
  client: KernelClient;
  dirtyState?: ExecutionState;
  dirtyActivity?: Date;
  /** Websockets attached through this process right now. */
  attached: number;
  /** The count last written for this replica (refreshed every flush while non-zero). */
  written: number;
  /** Settles once the new client's iopub subscription is live (a kernel_info round trip). */
  ready?: Promise<void>;
  unsubscribe: Array<() => void>;
}

export class BridgeRegistry {
  private readonly entries = new Map<string, Entry>();
  /** This process's identity in `kernel_connections`. */
  readonly replicaId = randomUUID();
  private readonly timer: NodeJS.Timeout;
  /** The flush in progress: flushes run one after another (see `flush`). */
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly deps: {
      db: Db;
      secrets: SecretBox;
      logger: Logger;
      onDead: (kernelId: string) => void;
      flushMs?: number;
      /** Passed to every `KernelClient` (the byte budgets). */
      clientOptions?: Pick<KernelClientOptions, 'maxBufferedBytes' | 'slowClientGraceMs'>;
    },
  ) {
    this.timer = setInterval(() => void this.flush(), deps.flushMs ?? 2000);
    this.timer.unref();
  }

  /** The client of a kernel, connected from its database record. */
  clientFor(row: KernelRow): KernelClient {
    const existing = this.entries.get(row.id);
    if (existing) return existing.client;
    const address = kernelAddress(row);
    const client = new KernelClient({
      connection: connectionInfo(address.host, address.ports, this.deps.secrets.open(row.key_ciphertext), row.kernel_name, address.transport),
      kernelId: row.id,
      logger: this.deps.logger,
      ...this.deps.clientOptions,
    });
    const entry: Entry = { client, attached: 0, written: 0, unsubscribe: [] };
    entry.unsubscribe.push(
      client.onExecutionState((state) => {
        entry.dirtyState = state;
        entry.dirtyActivity = new Date();
      }),
      client.onDead(() => this.deps.onDead(row.id)),
    );
    this.entries.set(row.id, entry);
    return client;
  }

  /**
   * Resolves once this process's client for the kernel receives iopub, as jupyter_server's `nudge`
   * makes sure: a first request relayed before the subscription is live would lose its output. Never
   * rejects (a dead kernel still gets its websocket, which then shows `dead` and can restart it).
   */
  ready(row: KernelRow, timeoutMs = 10_000): Promise<void> {
    this.clientFor(row);
    const entry = this.entries.get(row.id)!;
    entry.ready ??= entry.client.kernelInfo(timeoutMs).then(
      () => undefined,
      (err: Error) => {
        entry.ready = undefined;
        this.deps.logger.warn('kernel did not answer kernel_info before a websocket attached', { kernel_id: row.id, error: err.message });
      },
    );
    return entry.ready;
  }

  /** Relays a websocket to the kernel until it closes. Call `ready` first. */
  attach(row: KernelRow, ws: WebSocket, sessionId: string | undefined): void {
    const client = this.clientFor(row);
    const entry = this.entries.get(row.id)!;
    entry.attached++;
    entry.dirtyActivity = new Date();
    client.attach(ws, { sessionId });
    ws.once('close', () => {
      if (this.entries.get(row.id) === entry && entry.attached > 0) {
        entry.attached--;
        entry.dirtyActivity = new Date();
      }
    });
    void this.flush(row.id);
  }

  /** Tells attached websockets the kernel state (`restarting`, `dead`, …). */
  broadcast(kernelId: string, state: 'restarting' | 'dead' | 'starting' | 'idle'): void {
    this.entries.get(kernelId)?.client.broadcastStatus(state);
  }

  get(kernelId: string): KernelClient | undefined {
    return this.entries.get(kernelId)?.client;
  }

  /** Closes the kernel's client and its websockets (kernel shut down). */
  async release(kernelId: string): Promise<void> {
    const entry = this.entries.get(kernelId);
    if (!entry) return;
    // Our websockets are about to close: take them out of the count first.
    entry.attached = 0;
    await this.flush(kernelId);
    this.entries.delete(kernelId);
    entry.unsubscribe.forEach((u) => u());
    await entry.client.close({ closeWebsockets: true });
  }

  /**
   * Writes activity and connection counts. Flushes (timer, attach, culling) run one after another: two
   * running at once could land out of order, a count taken before a websocket attached overwriting the
   * newer one, and the culler would see a connected kernel as unconnected.
   */
  flush(only?: string): Promise<void> {
    const run = this.flushing.then(() => this.write(only));
    this.flushing = run;
    return run;
  }

  private async write(only?: string): Promise<void> {
    for (const [id, e] of this.entries) {
      if (only !== undefined && id !== only) continue;
      // A non-zero count is refreshed every time so it outlives its TTL only while this process lives.
      if (e.dirtyState === undefined && e.dirtyActivity === undefined && e.attached === 0 && e.written === 0) continue;
      const update = { replicaId: this.replicaId, connections: e.attached, executionState: e.dirtyState, lastActivity: e.dirtyActivity ?? e.client.lastActivity };
      e.dirtyState = undefined;
      e.dirtyActivity = undefined;
      try {
        await recordKernelActivity(this.deps.db, id, update);
        e.written = update.connections;
      } catch (err) {
        this.deps.logger.warn('could not record kernel activity', { kernel_id: id, error: err });
      }
    }
  }

  /** Number of clients in this process (for metrics and memory figures). */
  get size(): number {
    return this.entries.size;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.flush();
    for (const id of [...this.entries.keys()]) await this.release(id);
  }
}
