/**
 * The Jupyter wire protocol on the ZMQ side: a message is the multipart
 * `[identities…, '<IDS|MSG>', signature, header, parent_header, metadata, content, buffers…]`,
 * signed with HMAC-SHA256 over the four JSON frames (buffers are not signed).
 *
 * Frames are kept as raw bytes (`RawMessage`) so the bridge can relay a message without parsing
 * its content; `parseFrame` decodes one part when a caller needs it.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** The frame separating routing identities from the message proper. */
export const DELIMITER = Buffer.from('<IDS|MSG>', 'latin1');

/** The Jupyter messaging protocol version spawngate speaks. */
export const PROTOCOL_VERSION = '5.3';

export interface MessageHeader {
  msg_id: string;
  msg_type: string;
  session: string;
  username: string;
  date: string;
  version: string;
  [key: string]: unknown;
}

/** A decoded Jupyter message (what the websocket's JSON protocol carries). */
export interface JupyterMessage<C = Record<string, unknown>> {
  header: MessageHeader;
  parent_header: Partial<MessageHeader>;
  metadata: Record<string, unknown>;
  content: C;
  buffers?: Buffer[];
}

/**
 * A message as it travels on ZMQ: the four JSON parts still encoded (UTF-8 bytes), the buffers raw.
 * `identities` are the routing frames in front of the delimiter (empty on DEALER/SUB sockets).
 */
export interface RawMessage {
  identities: Buffer[];
  header: Buffer;
  parentHeader: Buffer;
  metadata: Buffer;
  content: Buffer;
  buffers: Buffer[];
}

/** Why a multipart could not be read as a Jupyter message. */
export type WireRejection = 'no-delimiter' | 'too-few-frames' | 'bad-signature';

export class WireError extends Error {
  override readonly name = 'WireError';
  constructor(readonly reason: WireRejection) {
    super(
      reason === 'bad-signature'
        ? 'message signature does not match (wrong key or tampered message)'
        : `malformed Jupyter multipart message (${reason})`,
    );
  }
}

/**
 * Signs and verifies messages with one connection key. An empty key disables signing, as
 * jupyter_client does (signature frame empty, nothing checked).
 */
export class Signer {
  private readonly key: Buffer;

  constructor(key: string) {
    this.key = Buffer.from(key, 'utf8');
  }

  get enabled(): boolean {
    return this.key.length > 0;
  }

  /** Hex HMAC-SHA256 over header, parent_header, metadata and content, as ASCII bytes. */
  sign(header: Buffer, parentHeader: Buffer, metadata: Buffer, content: Buffer): Buffer {
    if (!this.enabled) return EMPTY;
    const h = createHmac('sha256', this.key);
    h.update(header);
    h.update(parentHeader);
    h.update(metadata);
    h.update(content);
    return Buffer.from(h.digest('hex'), 'latin1');
  }

  /** Constant-time check of a received signature frame. */
  verify(
    signature: Buffer,
    header: Buffer,
    parentHeader: Buffer,
    metadata: Buffer,
    content: Buffer,
  ): boolean {
    if (!this.enabled) return true;
    const expected = this.sign(header, parentHeader, metadata, content);
    return signature.length === expected.length && timingSafeEqual(signature, expected);
  }
}

const EMPTY = Buffer.alloc(0);

/** Builds the multipart for a raw message (identities first, then delimiter, signature, parts, buffers). */
export function serializeRaw(msg: RawMessage, signer: Signer): Buffer[] {
  const frames: Buffer[] = [...msg.identities, DELIMITER];
  frames.push(signer.sign(msg.header, msg.parentHeader, msg.metadata, msg.content));
  frames.push(msg.header, msg.parentHeader, msg.metadata, msg.content);
  for (const b of msg.buffers) frames.push(b);
  return frames;
}

/**
 * Reads a received multipart. Throws `WireError` on a missing delimiter, missing parts or a
 * signature that does not verify; the message is then to be dropped.
 */
export function deserializeRaw(frames: Buffer[], signer: Signer): RawMessage {
  let i = 0;
  while (i < frames.length && !isDelimiter(frames[i]!)) i++;
  if (i === frames.length) throw new WireError('no-delimiter');
  if (frames.length < i + 6) throw new WireError('too-few-frames');
  const [signature, header, parentHeader, metadata, content] = frames.slice(i + 1, i + 6) as [
    Buffer,
    Buffer,
    Buffer,
    Buffer,
    Buffer,
  ];
  if (!signer.verify(signature, header, parentHeader, metadata, content))
    throw new WireError('bad-signature');
  return {
    identities: frames.slice(0, i),
    header,
    parentHeader,
    metadata,
    content,
    buffers: frames.slice(i + 6),
  };
}

function isDelimiter(frame: Buffer): boolean {
  return frame.length === DELIMITER.length && frame.equals(DELIMITER);
}

/** Encodes a decoded message's parts (JSON) into a raw message. */
export function encodeMessage(msg: JupyterMessage<unknown>, identities: Buffer[] = []): RawMessage {
  return {
    identities,
    header: jsonFrame(msg.header),
    parentHeader: jsonFrame(msg.parent_header ?? {}),
    metadata: jsonFrame(msg.metadata ?? {}),
    content: jsonFrame(msg.content ?? {}),
    buffers: msg.buffers ?? [],
  };
}

/** Decodes every part of a raw message (header, parent_header, metadata, content; buffers kept). */
export function decodeMessage<C = Record<string, unknown>>(raw: RawMessage): JupyterMessage<C> {
  return {
    header: parseFrame(raw.header) as MessageHeader,
    parent_header: parseFrame(raw.parentHeader) as Partial<MessageHeader>,
    metadata: parseFrame(raw.metadata) as Record<string, unknown>,
    content: parseFrame(raw.content) as C,
    buffers: raw.buffers,
  };
}

export function jsonFrame(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value ?? {}), 'utf8');
}

/** Parses one JSON frame; an empty frame reads as `{}` (as jupyter_client's unpack of b'' would not). */
export function parseFrame(frame: Buffer): unknown {
  return frame.length === 0 ? {} : JSON.parse(frame.toString('utf8'));
}

/** A header for a new message, in jupyter_client's shape (ISO date with a `Z`). */
export function newHeader(
  msgType: string,
  session: string,
  msgId: string,
  username = 'spawngate',
): MessageHeader {
  return {
    msg_id: msgId,
    msg_type: msgType,
    username,
    session,
    date: new Date().toISOString(),
    version: PROTOCOL_VERSION,
  };
}
