/**
 * Which websocket gets which kernel message. Replies on shell / control / stdin go to the
 * websockets of the session that asked (the `session` of the request's header, which is the
 * reply's `parent_header.session`, plus the `session_id` the websocket was opened with); iopub goes
 * to every websocket.
 *
 * When the last websocket of a session leaves, the session is *parked* for a grace period: its
 * replies and the iopub messages its requests cause are kept and replayed, in order, to the next
 * websocket that opens with that session id — the way jupyter_server buffers for a reconnecting
 * client.
 *
 * A parked session keeps at most `maxBuffered` messages and `maxBufferedBytes` bytes (oldest dropped).
 */
import type { WebSocket } from 'ws';
import type { ClientFlow } from './client-flow';
import type { MessageHeader, RawMessage } from './wire';
import { encodeLegacy, encodeV1, type WsChannel, type WsFrame, type WsProtocol } from './ws-protocol';

const OPEN = 1; // WebSocket.OPEN

/** A message on its way to websockets; its encodings are built once, on first use. */
export interface Outbound {
  channel: WsChannel;
  raw: RawMessage;
  header: MessageHeader;
  legacy?: WsFrame;
  v1?: WsFrame;
}

/** Bytes a kernel message holds (its parts as received). */
export function sizeOf(raw: RawMessage): number {
  return raw.header.length + raw.parentHeader.length + raw.metadata.length + raw.content.length + raw.buffers.reduce((n, b) => n + b.length, 0);
}

function frameFor(msg: Outbound, protocol: WsProtocol): WsFrame {
  if (protocol === 'v1') return (msg.v1 ??= encodeV1(msg.channel, msg.raw));
  return (msg.legacy ??= encodeLegacy(msg.channel, msg.raw, msg.header));
}

/** One websocket attached to a kernel. */
export class Attachment {
  /** Every session this websocket speaks for (its `session_id`, and each header `session` it used). */
  readonly sessions = new Set<string>();

  constructor(
    readonly ws: WebSocket,
    readonly protocol: WsProtocol,
    /** The `session_id` the websocket was opened with, if any. */
    readonly sessionId: string | undefined,
    /** The kernel's budget for what its websockets have not written yet. */
    private readonly flow?: ClientFlow,
  ) {}

  /** Called by `ws` when a frame has been written to the socket. */
  private readonly written = (): void => this.flow?.written(this.ws);

  send(msg: Outbound): void {
    if (this.ws.readyState !== OPEN) return;
    const frame = frameFor(msg, this.protocol);
    this.ws.send(frame.data, { binary: frame.binary, compress: false }, this.flow && this.written);
    this.flow?.sent(this.ws);
  }
}

interface Parked {
  messages: Outbound[];
  bytes: number;
  timer: NodeJS.Timeout | undefined;
}

export interface SessionRouterOptions {
  /** How long a session without websockets keeps its messages, ms; 0 disables parking. */
  graceMs: number;
  /** Messages kept per parked session; the oldest are dropped beyond it. */
  maxBuffered: number;
  /** Bytes kept per parked session; the oldest messages are dropped beyond it. Default unbounded. */
  maxBufferedBytes?: number;
}

export class SessionRouter {
  private readonly attachments = new Set<Attachment>();
  private readonly routes = new Map<string, Set<Attachment>>();
  private readonly parked = new Map<string, Parked>();

  constructor(private readonly options: SessionRouterOptions) {}

  get size(): number {
    return this.attachments.size;
  }

  all(): Iterable<Attachment> {
    return this.attachments;
  }

  /** Attachments opened with this `session_id`. */
  withSessionId(sessionId: string): Attachment[] {
    return [...this.attachments].filter((a) => a.sessionId === sessionId);
  }

  add(att: Attachment): void {
    this.attachments.add(att);
    if (att.sessionId !== undefined) this.bind(att, att.sessionId);
  }

  /** Routes `session`'s replies to `att` too; replays what was parked for it. */
  bind(att: Attachment, session: string): void {
    if (att.sessions.has(session) || !this.attachments.has(att)) return;
    att.sessions.add(session);
    let set = this.routes.get(session);
    if (!set) this.routes.set(session, (set = new Set()));
    set.add(att);
    const parked = this.parked.get(session);
    if (parked) {
      this.parked.delete(session);
      if (parked.timer) clearTimeout(parked.timer);
      for (const msg of parked.messages) att.send(msg);
    }
  }

  /** Removes a websocket; sessions left without any websocket are parked. Idempotent. */
  remove(att: Attachment): void {
    if (!this.attachments.delete(att)) return;
    for (const session of att.sessions) {
      const set = this.routes.get(session);
      set?.delete(att);
      if (set && set.size === 0) {
        this.routes.delete(session);
        this.park(session);
      }
    }
  }

  /** Delivers a reply to its session's websockets; returns false if nobody (not even a parked session) takes it. */
  toSession(session: string | undefined, msg: Outbound): boolean {
    if (session === undefined) return false;
    const set = this.routes.get(session);
    if (set) {
      for (const att of set) att.send(msg);
      return true;
    }
    return this.keep(session, msg);
  }

  /** Delivers an iopub message to every websocket (and keeps it for its parked session, if any). */
  broadcast(msg: Outbound, parentSession: string | undefined): void {
    for (const att of this.attachments) att.send(msg);
    if (parentSession !== undefined && !this.routes.has(parentSession)) this.keep(parentSession, msg);
  }

  /** Drops every attachment and parked session (timers included). */
  clear(): void {
    for (const p of this.parked.values()) if (p.timer) clearTimeout(p.timer);
    this.parked.clear();
    this.routes.clear();
    this.attachments.clear();
  }

  private park(session: string): void {
    if (this.options.graceMs <= 0) return;
    const parked: Parked = { messages: [], bytes: 0, timer: undefined };
    parked.timer = setTimeout(() => {
      if (this.parked.get(session) === parked) this.parked.delete(session);
    }, this.options.graceMs);
    parked.timer.unref();
    this.parked.set(session, parked);
  }

  private keep(session: string, msg: Outbound): boolean {
    const parked = this.parked.get(session);
    if (!parked) return false;
    parked.messages.push(msg);
    parked.bytes += sizeOf(msg.raw);
    const maxBytes = this.options.maxBufferedBytes ?? Infinity;
    while (parked.messages.length > this.options.maxBuffered || (parked.bytes > maxBytes && parked.messages.length > 1)) {
      parked.bytes -= sizeOf(parked.messages.shift()!.raw);
    }
    return true;
  }
}
