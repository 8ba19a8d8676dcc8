/** The options and result types of `KernelClient` (one kernel's ZMQ channels, bridged to websockets). */
import type { Logger } from '../../logging';
import type { KernelConnectionInfo } from './connection-info';
import type { HeartbeatOptions } from './heartbeat';

/** Kernel execution states as reported on iopub, plus the ones spawngate synthesizes. */
export type ExecutionState =
  'starting' | 'idle' | 'busy' | 'restarting' | 'dead' | 'autorestarting' | (string & {});

export interface KernelClientOptions {
  connection: KernelConnectionInfo;
  /** Kernel id, for logs and error messages. */
  kernelId?: string;
  logger?: Logger;
  /** Heartbeat settings, or `false` for no heartbeat (no liveness reports). */
  heartbeat?: HeartbeatOptions | false;
  /** How long a session whose websockets all closed keeps its replies for a reconnect, ms; default 60000. */
  reconnectGraceMs?: number;
  /** Messages kept per such session; default 1000. */
  maxBufferedMessages?: number;
  /** `username` in the headers of messages spawngate sends itself; default 'spawngate'. */
  username?: string;
  /**
   * The per-kernel byte budget, default 32 MiB. Towards the kernel: past this many bytes of client
   * messages the kernel has not read, the bridge stops reading its websockets (TCP backpressure reaches
   * the clients) until half has drained. Towards clients: per websocket, as `slowClientGraceMs` says; and
   * a session parked for a reconnect keeps at most this many bytes of messages.
   */
  maxBufferedBytes?: number;
  /**
   * Towards clients, a websocket holding more than `maxBufferedBytes` of messages it has not read pauses
   * the kernel's reads until it has read down to half (see client-flow.ts). One of several that is still
   * over budget after this many ms is closed (1008) and the kernel read again. Default 10000.
   */
  slowClientGraceMs?: number;
}


export interface AttachOptions {
  /**
   * The websocket's `session_id` query parameter. Replies to this session reach this websocket,
   * and a websocket opened later with the same id takes over (the older one is closed, as
   * jupyter_server does). jupyter_server 1.23's gateway client sends none; then routing learns the
   * session from the messages the websocket sends.
   */
  sessionId?: string;
  /** Negotiated subprotocol (`ws.protocol` is used when omitted). */
  protocol?: string;
}

export interface ShutdownOptions {
  restart?: boolean;
  /** ms to wait for `shutdown_reply`; default 5000. */
  timeoutMs?: number;
}
