/**
 * The Jupyter websocket protocols, byte for byte as jupyter_server 1.23 speaks them
 * (`jupyter_server/base/zmqhandlers.py`, `services/kernels/handlers.py`):
 *
 * - **legacy** (no subprotocol): a text frame holding
 *   `{header, msg_id, msg_type, parent_header, metadata, content, buffers: [], channel}`; when the
 *   message has buffers, a binary frame `serialize_binary_message` builds: big-endian uint32 `nbufs`,
 *   `nbufs` uint32 offsets from the start of the frame, the JSON (without `buffers`), the buffers.
 *   This is what the browser sends through jupyter_server's gateway handler, which relays frames
 *   verbatim (text stays text), so `channel` travels inside the JSON both ways.
 * - **v1** (`v1.kernel.websocket.jupyter.org`): little-endian uint64 offset count, uint64 offsets,
 *   the channel name, then the still-encoded header, parent_header, metadata, content and buffers —
 *   no JSON handling at all.
 *
 * Outbound legacy JSON is assembled from the kernel's own JSON frames without re-parsing the
 * content, so large outputs cost one copy.
 */
import type { MessageHeader, RawMessage } from './wire';
import { parseFrame } from './wire';

export const V1_SUBPROTOCOL = 'v1.kernel.websocket.jupyter.org';

export type WsProtocol = 'legacy' | 'v1';

/** Channels a websocket client may address. */
export type WsChannel = 'shell' | 'control' | 'stdin' | 'iopub';

/**
 * The subprotocol to accept from a client's offer: v1 when offered, otherwise none (legacy).
 * Fit for `new WebSocketServer({ handleProtocols })`.
 */
export function selectKernelSubprotocol(offered: Set<string>): string | false {
  return offered.has(V1_SUBPROTOCOL) ? V1_SUBPROTOCOL : false;
}

export function protocolOf(negotiated: string | undefined): WsProtocol {
  return negotiated === V1_SUBPROTOCOL ? 'v1' : 'legacy';
}

/** A frame to put on a websocket. */
export interface WsFrame {
  data: Buffer;
  binary: boolean;
}

/** A message received from a websocket, ready to be signed and sent on `channel`. */
export interface WsInbound {
  channel: string | undefined;
  raw: RawMessage;
  header: MessageHeader;
}

export class WsProtocolError extends Error {
  override readonly name = 'WsProtocolError';
}

const OPEN_BRACE = Buffer.from('{"header":');
const EMPTY_OBJ = Buffer.from('{}');

function part(frame: Buffer): Buffer {
  return frame.length === 0 ? EMPTY_OBJ : frame;
}

/**
 * The legacy JSON for a kernel message, as jupyter_server's `_reserialize_reply` writes it, minus
 * `buffers` when `withBuffersKey` is false (the binary form pops it).
 */
function legacyJson(
  channel: string,
  raw: RawMessage,
  header: MessageHeader,
  withBuffersKey: boolean,
): Buffer {
  const mid =
    `,"msg_id":${JSON.stringify(header.msg_id ?? '')},"msg_type":${JSON.stringify(header.msg_type ?? '')}` +
    ',"parent_header":';
  const tail = (withBuffersKey ? ',"buffers":[]' : '') + `,"channel":${JSON.stringify(channel)}}`;
  return Buffer.concat([
    OPEN_BRACE,
    part(raw.header),
    Buffer.from(mid),
    part(raw.parentHeader),
    Buffer.from(',"metadata":'),
    part(raw.metadata),
    Buffer.from(',"content":'),
    part(raw.content),
    Buffer.from(tail),
  ]);
}

/** Encodes a kernel message for a legacy-protocol websocket (text, or binary when it has buffers). */
export function encodeLegacy(channel: string, raw: RawMessage, header: MessageHeader): WsFrame {
  if (raw.buffers.length === 0) return { data: legacyJson(channel, raw, header, true), binary: false };
  return { data: packBinary(legacyJson(channel, raw, header, false), raw.buffers), binary: true };
}

/** Encodes a kernel message for a v1-protocol websocket. */
export function encodeV1(channel: string, raw: RawMessage): WsFrame {
  return {
    data: serializeMsgToWsV1(channel, [
      raw.header,
      raw.parentHeader,
      raw.metadata,
      raw.content,
      ...raw.buffers,
    ]),
    binary: true,
  };
}

/** `serialize_binary_message`: JSON part first, then buffers, behind a uint32 (big-endian) offset table. */
export function serializeBinaryMessage(msg: Record<string, unknown> & { buffers: Buffer[] }): Buffer {
  const { buffers, ...rest } = msg;
  return packBinary(Buffer.from(JSON.stringify(rest), 'utf8'), buffers);
}

function packBinary(json: Buffer, buffers: Buffer[]): Buffer {
  const nbufs = buffers.length + 1;
  const table = Buffer.allocUnsafe(4 * (nbufs + 1));
  table.writeUInt32BE(nbufs, 0);
  let offset = table.length;
  table.writeUInt32BE(offset, 4);
  offset += json.length;
  for (let i = 0; i < buffers.length; i++) {
    table.writeUInt32BE(offset, 4 * (i + 2));
    offset += buffers[i]!.length;
  }
  return Buffer.concat([table, json, ...buffers]);
}

/** `deserialize_binary_message`: the JSON object with `buffers` set to the trailing parts. */
export function deserializeBinaryMessage(data: Buffer): Record<string, unknown> & { buffers: Buffer[] } {
  if (data.length < 8) throw new WsProtocolError('binary message too short');
  const nbufs = data.readInt32BE(0);
  if (nbufs < 1 || 4 * (nbufs + 1) > data.length)
    throw new WsProtocolError('binary message: bad buffer count');
  const offsets: number[] = [];
  for (let i = 0; i < nbufs; i++) offsets.push(data.readUInt32BE(4 * (i + 1)));
  const parts: Buffer[] = [];
  for (let i = 0; i < nbufs; i++) {
    const start = offsets[i]!;
    const end = i + 1 < nbufs ? offsets[i + 1]! : data.length;
    if (start > end || end > data.length) throw new WsProtocolError('binary message: bad offsets');
    parts.push(data.subarray(start, end));
  }
  const msg = JSON.parse(parts[0]!.toString('utf8')) as Record<string, unknown>;
  if (!msg || typeof msg !== 'object' || Array.isArray(msg))
    throw new WsProtocolError('binary message: JSON part is not an object');
  return Object.assign(msg, { buffers: parts.slice(1) });
}

/** `serialize_msg_to_ws_v1`. */
export function serializeMsgToWsV1(channel: string, parts: Buffer[]): Buffer {
  const ch = Buffer.from(channel, 'utf8');
  const count = parts.length + 2;
  const table = Buffer.allocUnsafe(8 * (count + 1));
  table.writeBigUInt64LE(BigInt(count), 0);
  let offset = table.length;
  table.writeBigUInt64LE(BigInt(offset), 8);
  offset += ch.length;
  table.writeBigUInt64LE(BigInt(offset), 16);
  for (let i = 0; i < parts.length; i++) {
    offset += parts[i]!.length;
    table.writeBigUInt64LE(BigInt(offset), 8 * (i + 3));
  }
  return Buffer.concat([table, ch, ...parts]);
}

/** `deserialize_msg_from_ws_v1`: the channel and the message parts. */
export function deserializeMsgFromWsV1(data: Buffer): { channel: string; parts: Buffer[] } {
  if (data.length < 8) throw new WsProtocolError('v1 message too short');
  const count = Number(data.readBigUInt64LE(0));
  if (count < 2 || 8 * (count + 1) > data.length) throw new WsProtocolError('v1 message: bad offset count');
  const offsets: number[] = [];
  for (let i = 0; i < count; i++) offsets.push(Number(data.readBigUInt64LE(8 * (i + 1))));
  for (let i = 0; i < count; i++) {
    const o = offsets[i]!;
    if (o > data.length || (i > 0 && o < offsets[i - 1]!))
      throw new WsProtocolError('v1 message: bad offsets');
  }
  const channel = data.subarray(offsets[0]!, offsets[1]!).toString('utf8');
  const parts: Buffer[] = [];
  for (let i = 1; i < count - 1; i++) parts.push(data.subarray(offsets[i]!, offsets[i + 1]!));
  return { channel, parts };
}

function asObject(value: unknown, what: string): Record<string, unknown> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value))
    throw new WsProtocolError(`${what} must be an object`);
  return value as Record<string, unknown>;
}

function checkHeader(value: unknown): MessageHeader {
  const header = asObject(value, 'header');
  if (typeof header.msg_type !== 'string' || typeof header.msg_id !== 'string') {
    throw new WsProtocolError('header needs string msg_id and msg_type');
  }
  return header as MessageHeader;
}

function fromJsonObject(msg: Record<string, unknown>, buffers: Buffer[]): WsInbound {
  const header = checkHeader(msg.header);
  const channel = typeof msg.channel === 'string' ? msg.channel : undefined;
  return {
    channel,
    header,
    raw: {
      identities: [],
      header: Buffer.from(JSON.stringify(header), 'utf8'),
      parentHeader: Buffer.from(JSON.stringify(asObject(msg.parent_header, 'parent_header')), 'utf8'),
      metadata: Buffer.from(JSON.stringify(asObject(msg.metadata, 'metadata')), 'utf8'),
      content: Buffer.from(JSON.stringify(asObject(msg.content, 'content')), 'utf8'),
      buffers,
    },
  };
}

/**
 * Decodes one websocket frame from a client. Throws `WsProtocolError` (or a `SyntaxError` from
 * JSON) on a frame that is not a Jupyter message; the caller drops it.
 */
export function decodeWsFrame(data: Buffer, isBinary: boolean, protocol: WsProtocol): WsInbound {
  if (protocol === 'v1') {
    if (!isBinary) throw new WsProtocolError('text frame on a v1 websocket');
    const { channel, parts } = deserializeMsgFromWsV1(data);
    if (parts.length < 4) throw new WsProtocolError('v1 message: fewer than four parts');
    const [h, p, m, c, ...buffers] = parts as [Buffer, Buffer, Buffer, Buffer, ...Buffer[]];
    const header = checkHeader(parseFrame(h));
    return {
      channel,
      header,
      raw: { identities: [], header: h, parentHeader: p, metadata: m, content: c, buffers },
    };
  }
  if (isBinary) {
    const msg = deserializeBinaryMessage(data);
    return fromJsonObject(msg, msg.buffers);
  }
  return fromJsonObject(asObject(JSON.parse(data.toString('utf8')), 'message'), []);
}
