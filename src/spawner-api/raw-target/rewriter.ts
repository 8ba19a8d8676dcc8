/**
 * Percent-encodes what real clients put raw into an HTTP/1.1 request target and Node's parser (llhttp)
 * refuses with a bare 400: jupyter_server appends `?user=<KERNEL_USERNAME>` unescaped (DESIGN §2), so
 * `zoë` arrives as raw UTF-8 and `a b` as a space inside the target. Tornado (Enterprise Gateway's
 * server) takes raw UTF-8; here every byte ≥ 0x80 and every space inside the target becomes `%XX`
 * before Node parses the line. Nothing else changes: methods, versions, header lines and bodies reach
 * llhttp byte for byte, so header and method parsing stay as strict as they were (no
 * `insecureHTTPParser`).
 *
 * To know where the next request line starts on a keep-alive or pipelined connection, each request's
 * framing is followed the way RFC 9112 §6.3 frames requests: a single `Content-Length`, or
 * `Transfer-Encoding: chunked` (whose chunks are followed), else no body. Whenever anything is not
 * plainly well-formed — a bare LF, an obs-fold, both or repeated length headers, another transfer
 * coding, a malformed chunk, an oversized line — and after any `Upgrade` or CONNECT request (a
 * websocket's frames or a tunnel follow), the rest of the connection passes through untouched: llhttp then sees exactly what the
 * client sent and decides alone, as it would without this layer. A guess of framing therefore never
 * rewrites bytes llhttp would read as a body, which could otherwise shift its framing.
 */

/** A request line longer than this passes through untouched (Node refuses heads over 16 KiB anyway). */
export const MAX_REQUEST_LINE_BYTES = 16 * 1024;
/** Header lines are forwarded as they arrive; one longer than this ends the following of framing. */
const MAX_HEADER_LINE_BYTES = 16 * 1024;
const MAX_CHUNK_LINE_BYTES = 4096;
const CR = 0x0d;
const LF = 0x0a;
const VERSION = /^HTTP\/\d\.\d$/;

interface Framing {
  length?: number;
  chunked: boolean;
  /** An `Upgrade` header or a CONNECT: what follows the head is not HTTP. */
  upgrade: boolean;
}

type State =
  | { kind: 'request-line' }
  | { kind: 'headers'; framing: Framing; line: Buffer[]; lineBytes: number }
  | { kind: 'body'; remaining: number }
  | { kind: 'chunk-size'; line: Buffer[]; lineBytes: number }
  | { kind: 'chunk-data'; remaining: number }
  | { kind: 'chunk-end'; seen: number }
  | { kind: 'trailers'; line: Buffer[]; lineBytes: number }
  | { kind: 'passthrough' };

/** Index of the first CRLF in `b`; -2 when an LF without its CR comes first; -1 when there is none. */
function lineEnd(b: Buffer, from = 0): number {
  const lf = b.indexOf(LF, from);
  if (lf < 0) return -1;
  if (lf === 0 || b[lf - 1] !== CR) return -2;
  const cr = b.indexOf(CR, from);
  return cr === lf - 1 ? cr : -2; // a bare CR before it is as bad
}

/**
 * One connection's rewriter: feed it the bytes as they arrive and forward what it returns. Only a
 * request line is ever held back (until its CRLF); everything else is returned at once.
 */
export class RequestTargetRewriter {
  private state: State = { kind: 'request-line' };
  private held: Buffer = Buffer.alloc(0);

  /** Whether the rest of the connection is passed through untouched. */
  get passingThrough(): boolean {
    return this.state.kind === 'passthrough';
  }

  /** Whether part of a request line is held back, waiting for its end. */
  get holding(): boolean {
    return this.held.length > 0;
  }

  /** Returns the bytes to hand to the HTTP parser for `chunk`. */
  feed(chunk: Buffer): Buffer {
    if (this.state.kind === 'passthrough') return chunk;
    let input = this.held.length ? Buffer.concat([this.held, chunk]) : chunk;
    this.held = Buffer.alloc(0);
    const out: Buffer[] = [];
    while (input.length > 0) {
      const used = this.step(input, out);
      if (used === undefined) {
        this.held = input; // an unfinished request line
        break;
      }
      input = input.subarray(used);
    }
    return out.length === 1 ? out[0]! : Buffer.concat(out);
  }

  /** The bytes held back when the stream ends (an unfinished request line), as they came. */
  flush(): Buffer {
    const rest = this.held;
    this.held = Buffer.alloc(0);
    return rest;
  }

  /** Consumes a prefix of `input`, pushing what to forward; `undefined` to wait for more bytes. */
  private step(input: Buffer, out: Buffer[]): number | undefined {
    const s = this.state;
    switch (s.kind) {
      case 'passthrough':
        out.push(input);
        return input.length;
      case 'request-line': {
        const end = lineEnd(input);
        if (end === -2 || (end === -1 && input.length > MAX_REQUEST_LINE_BYTES)) return this.passRest(input, out);
        if (end === -1) return undefined;
        // Empty lines before a request line are allowed (RFC 9112 §2.2) and skipped by llhttp too.
        if (end > 0) out.push(rewriteRequestLine(input.subarray(0, end)));
        out.push(input.subarray(end, end + 2));
        if (end > 0) {
          const connect = input.subarray(0, 8).toString('latin1') === 'CONNECT ';
          this.state = { kind: 'headers', framing: { chunked: false, upgrade: connect }, line: [], lineBytes: 0 };
        }
        return end + 2;
      }
      case 'headers':
      case 'chunk-size':
      case 'trailers':
        return this.lineOf(s, input, out);
      case 'body':
      case 'chunk-data': {
        const n = Math.min(s.remaining, input.length);
        out.push(input.subarray(0, n));
        s.remaining -= n;
        if (s.remaining === 0) this.state = s.kind === 'body' ? { kind: 'request-line' } : { kind: 'chunk-end', seen: 0 };
        return n;
      }
      case 'chunk-end': {
        // The CRLF after a chunk's data, possibly split across reads.
        const want = s.seen === 0 ? CR : LF;
        if (input[0] !== want) return this.passRest(input, out);
        out.push(input.subarray(0, 1));
        if (s.seen === 0) s.seen = 1;
        else this.state = { kind: 'chunk-size', line: [], lineBytes: 0 };
        return 1;
      }
    }
  }

  /**
   * Forwards the bytes of a header, chunk-size or trailer line as they come (holding back only a CR
   * that ends a read, whose LF is in the next) and acts on the line once its CRLF has arrived.
   */
  private lineOf(s: Extract<State, { line: Buffer[] }>, input: Buffer, out: Buffer[]): number | undefined {
    const end = lineEnd(input);
    const max = s.kind === 'chunk-size' ? MAX_CHUNK_LINE_BYTES : MAX_HEADER_LINE_BYTES;
    // A bare CR or LF, or an over-long line: llhttp alone decides from here on.
    if (end === -2 || s.lineBytes + (end === -1 ? input.length : end) > max) return this.passRest(input, out);
    if (end === -1) {
      if (input.length === 1 && input[0] === CR) return undefined;
      const part = input.subarray(0, input.at(-1) === CR ? input.length - 1 : input.length);
      out.push(part);
      s.line.push(part);
      s.lineBytes += part.length;
      return part.length;
    }
    out.push(input.subarray(0, end + 2));
    const line = s.lineBytes ? Buffer.concat([...s.line, input.subarray(0, end)]) : input.subarray(0, end);
    s.line = [];
    s.lineBytes = 0;
    this.lineDone(s, line);
    return end + 2;
  }

  /** Acts on one complete header, chunk-size or trailer line. */
  private lineDone(s: Extract<State, { line: Buffer[] }>, line: Buffer): void {
    if (s.kind === 'headers') {
      if (line.length > 0) {
        if (!addHeader(s.framing, line)) this.state = { kind: 'passthrough' };
        return;
      }
      const f = s.framing;
      if (f.upgrade || (f.chunked && f.length !== undefined)) this.state = { kind: 'passthrough' };
      else if (f.chunked) this.state = { kind: 'chunk-size', line: [], lineBytes: 0 };
      else if (f.length) this.state = { kind: 'body', remaining: f.length };
      else this.state = { kind: 'request-line' };
    } else if (s.kind === 'chunk-size') {
      const m = /^([0-9A-Fa-f]{1,8})(;[\x21-\x7e\t ]*)?$/.exec(line.toString('latin1'));
      if (!m) this.state = { kind: 'passthrough' };
      else {
        const size = parseInt(m[1]!, 16);
        this.state = size === 0 ? { kind: 'trailers', line: [], lineBytes: 0 } : { kind: 'chunk-data', remaining: size };
      }
    } else if (line.length === 0) {
      this.state = { kind: 'request-line' }; // the empty line ending the trailers
    }
  }

  private passRest(input: Buffer, out: Buffer[]): number {
    this.state = { kind: 'passthrough' };
    out.push(input);
    return input.length;
  }
}

/** Records what a header line says about framing; `false` when it is not plainly well-formed. */
function addHeader(f: Framing, raw: Buffer): boolean {
  if (raw[0] === 0x20 || raw[0] === 0x09) return false; // obs-fold
  const line = raw.toString('latin1');
  const colon = line.indexOf(':');
  if (colon <= 0) return false;
  const name = line.slice(0, colon).toLowerCase();
  const value = line.slice(colon + 1).trim();
  if (name === 'content-length') {
    if (f.length !== undefined || !/^\d{1,15}$/.test(value)) return false;
    f.length = Number(value);
  } else if (name === 'transfer-encoding') {
    if (f.chunked || value.toLowerCase() !== 'chunked') return false;
    f.chunked = true;
  } else if (name === 'upgrade') {
    f.upgrade = true;
  }
  return true;
}

/**
 * `METHOD SP target SP HTTP/x.y` with the target's spaces and bytes ≥ 0x80 as `%XX`. The method is the
 * part before the first space and the version the part after the last; a line without that shape is
 * returned unchanged (for llhttp to refuse).
 */
export function rewriteRequestLine(line: Buffer): Buffer {
  let plain = true;
  let spaces = 0;
  for (const b of line) {
    if (b >= 0x80) plain = false;
    else if (b === 0x20) spaces++;
  }
  if (plain && spaces <= 2) return line;
  const first = line.indexOf(0x20);
  const last = line.lastIndexOf(0x20);
  if (first <= 0 || last <= first + 1) return line;
  if (!VERSION.test(line.subarray(last + 1).toString('latin1'))) return line;
  const target = line.subarray(first + 1, last);
  let encoded = '';
  for (const b of target) encoded += b >= 0x80 || b === 0x20 ? `%${b.toString(16).toUpperCase().padStart(2, '0')}` : String.fromCharCode(b);
  return Buffer.concat([line.subarray(0, first + 1), Buffer.from(encoded, 'latin1'), line.subarray(last)]);
}
