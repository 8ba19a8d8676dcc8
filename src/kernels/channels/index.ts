/**
 * Public surface of `src/kernels/channels/`: the websocket ⇄ ZMQ bridge of one kernel
 * (`KernelClient`), the connection-file type, and the two wire protocols it translates between.
 */
import type { ServerOptions } from 'ws';
import { selectKernelSubprotocol } from './ws-protocol';

export {
  channelAddress,
  kernelConnectionInfoSchema,
  parseConnectionInfo,
  type KernelConnectionInfo,
  type ZmqChannel,
} from './connection-info';
export { KernelClientClosedError, KernelTimeoutError } from './errors';
export type { HeartbeatOptions } from './heartbeat';
export { DEFAULT_MAX_BUFFERED_BYTES } from './request-queues';
export {
  KernelClient,
  type AttachOptions,
  type ExecutionState,
  type KernelClientOptions,
  type ShutdownOptions,
} from './kernel-client';
export {
  DELIMITER,
  PROTOCOL_VERSION,
  decodeMessage,
  deserializeRaw,
  encodeMessage,
  newHeader,
  serializeRaw,
  Signer,
  WireError,
  type JupyterMessage,
  type MessageHeader,
  type RawMessage,
  type WireRejection,
} from './wire';
export {
  V1_SUBPROTOCOL,
  decodeWsFrame,
  deserializeBinaryMessage,
  deserializeMsgFromWsV1,
  encodeLegacy,
  encodeV1,
  selectKernelSubprotocol,
  serializeBinaryMessage,
  serializeMsgToWsV1,
  WsProtocolError,
  type WsChannel,
  type WsFrame,
  type WsProtocol,
} from './ws-protocol';

/** Largest websocket message accepted by default: Jupyter Server's (tornado's) `websocket_max_message_size`, 10 MiB. */
export const DEFAULT_MAX_FRAME_BYTES = 10 * 1024 * 1024;

/**
 * Options for the `WebSocketServer` that serves `/api/kernels/{id}/channels`: no per-message
 * compression (it costs latency on every small message), the v1 subprotocol when offered, and a
 * maximum message size (`maxPayload`; a larger message closes the socket with 1009, as tornado does).
 */
export function kernelWebSocketServerOptions(opts: { maxFrameBytes?: number } = {}): Pick<ServerOptions, 'perMessageDeflate' | 'handleProtocols' | 'maxPayload'> {
  return {
    perMessageDeflate: false,
    handleProtocols: (protocols) => selectKernelSubprotocol(protocols),
    maxPayload: opts.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES,
  };
}
