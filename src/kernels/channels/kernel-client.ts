/**
 * One kernel's ZMQ channels, held by one API process, bridged to any number of websockets.
 *
 * Sockets: one DEALER each for shell, control and stdin (sharing one routing id, so the kernel's
 * `input_request` on stdin reaches the same peer that sent the `execute_request`), a SUB for iopub
 * and a REQ for the heartbeat. Websocket sessions share the DEALERs; replies are routed by their
 * `parent_header.session` (see `SessionRouter`), so a reply reaches only the session that asked,
 * whichever API replica it reconnects through, while the socket count stays constant per kernel.
 *
 * Latency: nothing is batched or compressed; each kernel message is forwarded as soon as ZMQ
 * delivers it, and the websocket's TCP socket has Nagle's algorithm off (jupyter_server leaves it
 * on, which with the client's delayed ACK costs ~40 ms per round trip).
 */
import { randomUUID } from 'node:crypto';
import type { WebSocket } from 'ws';
import { Dealer, Subscriber } from 'zeromq';
import { logger as rootLogger, type Logger } from '../../logging';
import { ClientFlow } from './client-flow';
import { channelAddress, KERNEL_CONNECT_TIMEOUT_MS } from './connection-info';
import { KernelClientClosedError, KernelTimeoutError } from './errors';
import { Heartbeat } from './heartbeat';
import { PendingRequests } from './pending-requests';
import type { AttachOptions, ExecutionState, KernelClientOptions, ShutdownOptions } from './kernel-client-options';
import { DEFAULT_MAX_BUFFERED_BYTES, REQUEST_SEND_HWM, RequestQueues, type RequestChannel } from './request-queues';

export type { AttachOptions, ExecutionState, KernelClientOptions, ShutdownOptions } from './kernel-client-options';
import { Attachment, SessionRouter, type Outbound } from './session-router';
import {
  decodeMessage,
  deserializeRaw,
  encodeMessage,
  newHeader,
  parseFrame,
  serializeRaw,
  Signer,
  WireError,
  type JupyterMessage,
  type MessageHeader,
  type RawMessage,
} from './wire';
import { decodeWsFrame, protocolOf, type WsChannel } from './ws-protocol';

const REQUEST_CHANNELS: readonly RequestChannel[] = ['shell', 'control', 'stdin'];
/**
 * Kernel messages ZMQ may queue inside spawngate per socket while the bridge does not read it (libzmq
 * then stops reading the connection, and the rest waits at the kernel, whose own send high-water mark
 * is 1000). ZMQ's default, 1000, would let a paused kernel park 1000 outputs of any size in spawngate.
 */
const KERNEL_RECEIVE_HWM = 32;

export class KernelClient {
  readonly kernelId: string | undefined;
  /** The session id of messages spawngate itself sends (kernel_info, interrupt, shutdown, status). */
  readonly session = randomUUID();
  private readonly log: Logger;
  private readonly signer: Signer;
  private readonly username: string;
  private readonly dealers: Record<RequestChannel, Dealer>;
  private readonly iopub: Subscriber;
  private readonly heartbeat: Heartbeat | undefined;
  private readonly router: SessionRouter;
  private readonly queues: RequestQueues;
  /** The per-kernel byte budget, for each direction (see `KernelClientOptions.maxBufferedBytes`). */
  private readonly maxBufferedBytes: number;
  private readonly pending = new PendingRequests();
  private readonly deadListeners = new Set<() => void>();
  private readonly stateListeners = new Set<(state: ExecutionState) => void>();
  private readonly loops: Promise<void>[] = [];
  /** The kernel → client budget (see client-flow.ts). */
  private readonly flow: ClientFlow;
  /** Set while the kernel's sockets are not read; the receive loops wait on it. */
  private readGate: { promise: Promise<void>; open(): void } | undefined;
  private state: ExecutionState = 'starting';
  /** iopub messages caused by spawngate's own requests, counted to prove the subscription is live. */
  private ownIopub = 0;
  private readonly iopubWaiters = new Set<() => void>();
  private activity = Date.now();
  private closed = false;

  constructor(options: KernelClientOptions) {
    const info = options.connection;
    this.kernelId = options.kernelId;
    this.log = (options.logger ?? rootLogger).child({
      component: 'kernel-channels',
      kernel_id: options.kernelId,
    });
    this.signer = new Signer(info.key);
    this.maxBufferedBytes = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
    this.username = options.username ?? 'spawngate';
    this.router = new SessionRouter({
      graceMs: options.reconnectGraceMs ?? 60_000,
      maxBuffered: options.maxBufferedMessages ?? 1000,
      maxBufferedBytes: this.maxBufferedBytes,
    });
    const ipv6 = info.ip.includes(':');
    const routingId = `spawngate-${this.session}`;
    const dealer = (channel: RequestChannel): Dealer => {
      const sock = new Dealer({
        linger: 0,
        routingId,
        ipv6,
        connectTimeout: KERNEL_CONNECT_TIMEOUT_MS,
        sendHighWaterMark: REQUEST_SEND_HWM,
        receiveHighWaterMark: KERNEL_RECEIVE_HWM,
      });
      sock.connect(channelAddress(info, channel));
      return sock;
    };
    this.dealers = { shell: dealer('shell'), control: dealer('control'), stdin: dealer('stdin') };
    this.queues = new RequestQueues(this.dealers, {
      maxBufferedBytes: this.maxBufferedBytes,
      onError: (channel, err) => this.log.warn('could not send to kernel', { channel, error: err.message }),
      onPause: (bytes) => {
        this.log.warn('kernel is not reading its messages; pausing its websockets', { buffered_bytes: bytes });
        for (const a of this.router.all()) a.ws.pause();
      },
      onResume: (bytes) => {
        this.log.info('kernel reads again; resuming its websockets', { buffered_bytes: bytes });
        for (const a of this.router.all()) a.ws.resume();
      },
    });
    this.flow = new ClientFlow({
      budgetBytes: this.maxBufferedBytes,
      graceMs: options.slowClientGraceMs ?? 10_000,
      consumers: () => this.router.size,
      pauseKernel: () => this.pauseReading(),
      resumeKernel: () => this.resumeReading(),
      drop: (ws) => {
        for (const a of this.router.all()) if (a.ws === ws) this.router.remove(a);
      },
      log: (event, fields) => {
        if (event === 'pause') this.log.info('a websocket does not read; pausing its kernel until it catches up', fields);
        else if (event === 'resume') this.log.info('the websocket caught up; reading its kernel again', fields);
        else this.log.warn('closing a websocket that does not read while others of the kernel do', fields);
      },
    });
    this.iopub = new Subscriber({ linger: 0, ipv6, connectTimeout: KERNEL_CONNECT_TIMEOUT_MS, receiveHighWaterMark: KERNEL_RECEIVE_HWM });
    this.iopub.connect(channelAddress(info, 'iopub'));
    this.iopub.subscribe();
    for (const channel of REQUEST_CHANNELS) this.loops.push(this.receive(this.dealers[channel], channel));
    this.loops.push(this.receive(this.iopub, 'iopub'));
    this.heartbeat =
      options.heartbeat === false
        ? undefined
        : new Heartbeat(channelAddress(info, 'hb'), options.heartbeat ?? {}, ipv6, {
            onDead: () => this.onHeartbeatDead(),
            onAlive: () => this.log.info('kernel heartbeat is back'),
          });
  }

  /** Open websockets attached to this kernel. */
  get connections(): number {
    return this.router.size;
  }

  /** Bytes of client messages waiting for the kernel to read them. */
  get bufferedBytes(): number {
    return this.queues.bytes;
  }

  /** Bytes of kernel messages queued on this kernel's websockets and not yet written to their clients. */
  get clientBufferedBytes(): number {
    let n = 0;
    for (const a of this.router.all()) n += a.ws.bufferedAmount;
    return n;
  }

  /** True while the kernel's sockets are not read because its only websocket does not read. */
  get isReadingPaused(): boolean {
    return this.flow.isPaused;
  }

  /** True while the websockets are paused because the kernel does not read (backpressure). */
  get isBackpressured(): boolean {
    return this.queues.isPaused;
  }

  /** Last message from the kernel on iopub or from a websocket client. */
  get lastActivity(): Date {
    return new Date(this.activity);
  }

  /** Latest iopub `status` (or synthesized state); 'starting' until the kernel reports one. */
  get executionState(): ExecutionState {
    return this.state;
  }

  /** True after `missedBeats` heartbeats went unanswered, until the kernel answers again. */
  get isDead(): boolean {
    return this.heartbeat?.isDead ?? false;
  }

  /**
   * Resolves with the `kernel_info_reply` content once the kernel answers — launch readiness.
   * Re-sends the request every second (a request queued before the kernel bound its ports may be
   * lost with a process that died). Rejects with `KernelTimeoutError` after `timeoutMs`.
   */
  async kernelInfo(timeoutMs = 30_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const seen = this.ownIopub;
      const reply = await this.request(
        'shell',
        'kernel_info_request',
        {},
        Math.max(1, deadline - Date.now()),
        1000,
      );
      // Like jupyter_client's wait_for_ready: also make sure our iopub subscription reaches this
      // kernel process (it publishes busy/idle around every request; a fresh process after a
      // restart drops what it publishes before our subscription arrives), so no output is missed.
      // A short wait then a resend: a subscription still connecting would otherwise cost a full wait.
      if (await this.waitForIopub(seen, Math.min(100, deadline - Date.now()))) return reply.content;
      if (Date.now() >= deadline)
        throw new KernelTimeoutError('kernel_info_request', timeoutMs, this.kernelId);
    }
  }

  /** Sends `interrupt_request` on control (kernels with `interrupt_mode: 'message'`); resolves on `interrupt_reply`. */
  async interrupt(timeoutMs = 5000): Promise<void> {
    await this.request('control', 'interrupt_request', {}, timeoutMs);
  }

  /**
   * Sends `shutdown_request` on control and resolves with the `shutdown_reply` content. Rejects with
   * `KernelTimeoutError` if the kernel does not answer in time — the caller then kills the process.
   */
  async shutdown(options: ShutdownOptions = {}): Promise<Record<string, unknown>> {
    const restart = options.restart ?? false;
    const reply = await this.request('control', 'shutdown_request', { restart }, options.timeoutMs ?? 5000);
    return reply.content;
  }

  /**
   * Sends one request from spawngate's own session and resolves with the reply (matched by
   * `parent_header.msg_id`). With `resendMs`, the request is sent again (new msg_id) at that period
   * until a reply arrives.
   */
  request(
    channel: RequestChannel,
    msgType: string,
    content: Record<string, unknown>,
    timeoutMs: number,
    resendMs?: number,
  ): Promise<JupyterMessage> {
    if (this.closed) return Promise.reject(new KernelClientClosedError(this.kernelId));
    return this.pending.track({
      msgType,
      timeoutMs,
      resendMs,
      kernelId: this.kernelId,
      send: (msgId) => {
        const header = newHeader(msgType, this.session, msgId, this.username);
        const raw = encodeMessage({ header, parent_header: {}, metadata: {}, content });
        this.queues.push(channel, serializeRaw(raw, this.signer));
      },
    });
  }

  /**
   * Bridges a websocket to the kernel until it closes or the returned function is called
   * (idempotent). Messages from the websocket go to the channel they name (shell when none);
   * replies go back only to the session that asked; iopub goes to every attached websocket.
   * Routing is for correctness, not isolation: every websocket of a kernel belongs to its owner
   * (the gateway routes enforce that), and iopub is shared anyway.
   */
  attach(ws: WebSocket, options: AttachOptions = {}): () => void {
    if (this.closed) {
      ws.close(1011, 'kernel client closed');
      return () => {};
    }
    if (ws.readyState !== ws.OPEN) return () => {}; // already closing: no 'close' left to detach on
    const att = new Attachment(ws, protocolOf(options.protocol ?? ws.protocol), options.sessionId, this.flow);
    if (options.sessionId !== undefined) {
      for (const stale of this.router.withSessionId(options.sessionId)) {
        this.log.warn('replacing stale websocket of the same session', { session_id: options.sessionId });
        this.router.remove(stale);
        stale.ws.close(1000, 'replaced by a newer connection of the same session');
      }
    }
    // TCP_NODELAY: each kernel message leaves at once instead of waiting for the client's ACK.
    (ws as unknown as { _socket?: { setNoDelay?(v: boolean): void } })._socket?.setNoDelay?.(true);
    this.router.add(att);
    this.flow.attached();
    if (this.queues.isPaused) ws.pause();

    const onMessage = (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void =>
      this.fromWebsocket(att, toBuffer(data), isBinary);
    const detach = (): void => {
      ws.off('message', onMessage);
      ws.off('close', detach);
      ws.off('error', onError);
      this.router.remove(att);
      this.flow.detached(ws);
    };
    const onError = (err: Error): void => {
      this.log.debug('websocket error', { error: err.message });
      detach();
    };
    ws.on('message', onMessage);
    ws.once('close', detach);
    ws.on('error', onError);
    if (this.state === 'dead') att.send(this.statusMessage('dead'));
    return detach;
  }

  /** Sends a synthesized iopub `status` to every websocket and records it as the execution state. */
  broadcastStatus(state: ExecutionState): void {
    this.setState(state);
    this.router.broadcast(this.statusMessage(state), undefined);
  }

  /** Calls `cb` each time the heartbeat declares the kernel dead; returns an unsubscribe function. */
  onDead(cb: () => void): () => void {
    this.deadListeners.add(cb);
    return () => this.deadListeners.delete(cb);
  }

  /** Calls `cb` on each execution-state change; returns an unsubscribe function. */
  onExecutionState(cb: (state: ExecutionState) => void): () => void {
    this.stateListeners.add(cb);
    return () => this.stateListeners.delete(cb);
  }

  /** Stops liveness reports (e.g. during a deliberate restart). Idempotent. */
  pauseHeartbeat(): void {
    this.heartbeat?.pause();
  }

  /** Resumes liveness reports, from zero missed beats. Idempotent. */
  resumeHeartbeat(): void {
    this.heartbeat?.resume();
  }

  /**
   * Closes every socket, rejects pending requests with `KernelClientClosedError` and closes the
   * attached websockets (1001: clients reconnect and find the kernel's new state). Idempotent.
   */
  async close(options: { closeWebsockets?: boolean } = {}): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const err = new KernelClientClosedError(this.kernelId);
    this.pending.rejectAll(err);
    for (const wake of [...this.iopubWaiters]) wake();
    if (options.closeWebsockets ?? true)
      for (const att of this.router.all()) att.ws.close(1001, 'kernel connection closed');
    this.router.clear();
    this.flow.clear();
    this.resumeReading();
    this.queues.close();
    const hb = this.heartbeat?.stop();
    for (const sock of [...Object.values(this.dealers), this.iopub]) sock.close();
    await Promise.all([hb, ...this.loops]);
  }

  private fromWebsocket(att: Attachment, data: Buffer, isBinary: boolean): void {
    let msg;
    try {
      msg = decodeWsFrame(data, isBinary, att.protocol);
    } catch (err) {
      this.log.warn('dropping malformed websocket message', { error: (err as Error).message });
      return;
    }
    let channel = msg.channel;
    if (channel === undefined) {
      this.log.warn('message without channel, assuming shell', { msg_type: msg.header.msg_type });
      channel = 'shell';
    }
    if (channel !== 'shell' && channel !== 'control' && channel !== 'stdin') {
      this.log.warn('dropping websocket message for a channel clients cannot send on', { channel });
      return;
    }
    if (typeof msg.header.session === 'string') this.router.bind(att, msg.header.session);
    this.activity = Date.now();
    this.queues.push(channel, serializeRaw(msg.raw, this.signer));
  }

  private pauseReading(): void {
    if (this.readGate) return;
    let open!: () => void;
    const promise = new Promise<void>((resolve) => (open = resolve));
    this.readGate = { promise, open };
  }

  private resumeReading(): void {
    const gate = this.readGate;
    this.readGate = undefined;
    gate?.open();
  }

  private async receive(sock: Dealer | Subscriber, channel: WsChannel): Promise<void> {
    try {
      for (;;) {
        while (this.readGate) await this.readGate.promise;
        if (this.closed || sock.closed) return;
        let frames: Buffer[];
        try {
          frames = await sock.receive();
        } catch (err) {
          if (sock.closed && (err as { code?: string }).code === 'EAGAIN') return;
          throw err;
        }
        this.fromKernel(channel, frames);
      }
    } catch (err) {
      if (!this.closed)
        this.log.error('kernel channel receive loop failed', { channel, error: (err as Error).message });
    }
  }

  private fromKernel(channel: WsChannel, frames: Buffer[]): void {
    let raw: RawMessage;
    let header: MessageHeader;
    let parent: Partial<MessageHeader>;
    try {
      raw = deserializeRaw(frames, this.signer);
      header = parseFrame(raw.header) as MessageHeader;
      parent = parseFrame(raw.parentHeader) as Partial<MessageHeader>;
    } catch (err) {
      // Never log the key or the signature; the message type is not trusted either.
      const reason = err instanceof WireError ? err.reason : 'unparsable JSON part';
      this.log.warn('dropping kernel message', { channel, reason });
      return;
    }
    const msg: Outbound = { channel, raw, header };
    if (channel === 'iopub') {
      this.activity = Date.now();
      if (parent.session === this.session) {
        this.ownIopub++;
        for (const wake of [...this.iopubWaiters]) wake();
      }
      if (header.msg_type === 'status') {
        const content = parseFrame(raw.content) as { execution_state?: unknown };
        if (typeof content.execution_state === 'string') this.setState(content.execution_state);
      }
      this.router.broadcast(msg, parent.session);
      return;
    }
    if (parent.session === this.session && this.pending.has(parent.msg_id)) {
      this.pending.resolve(parent.msg_id!, decodeMessage(raw));
      return;
    }
    if (!this.router.toSession(parent.session, msg)) {
      this.log.debug('no websocket for reply', { channel, msg_type: header.msg_type });
    }
  }

  /** Resolves true once more than `seen` own iopub messages have arrived, false after `ms`. */
  private waitForIopub(seen: number, ms: number): Promise<boolean> {
    if (this.ownIopub > seen || ms <= 0 || this.closed) return Promise.resolve(this.ownIopub > seen);
    return new Promise((resolve) => {
      const wake = (): void => {
        if (this.ownIopub <= seen && !this.closed && Date.now() < until) return;
        clearTimeout(timer);
        this.iopubWaiters.delete(wake);
        resolve(this.ownIopub > seen);
      };
      const until = Date.now() + ms;
      const timer = setTimeout(() => {
        this.iopubWaiters.delete(wake);
        resolve(this.ownIopub > seen);
      }, ms);
      this.iopubWaiters.add(wake);
    });
  }

  private statusMessage(state: ExecutionState): Outbound {
    const header = newHeader('status', this.session, randomUUID(), this.username);
    return {
      channel: 'iopub',
      header,
      raw: encodeMessage({ header, parent_header: {}, metadata: {}, content: { execution_state: state } }),
    };
  }

  private setState(state: ExecutionState): void {
    if (state === this.state) return;
    this.state = state;
    for (const cb of this.stateListeners) safely(this.log, () => cb(state));
  }

  private onHeartbeatDead(): void {
    this.log.warn('kernel missed its heartbeats; reporting it dead', {
      missed_beats: this.heartbeat?.missedBeats,
      interval_ms: this.heartbeat?.intervalMs,
    });
    this.broadcastStatus('dead');
    for (const cb of this.deadListeners) safely(this.log, cb);
  }
}

function toBuffer(data: Buffer | ArrayBuffer | Buffer[]): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

function safely(log: Logger, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    log.error('kernel client listener threw', { error: (err as Error).message });
  }
}
