/**
 * Decoding the engine's log output. Without a TTY, Docker (and podman's compat API) multiplex stdout
 * and stderr in frames of an 8-byte header (stream, 0, 0, 0, big-endian length) and payload. Logs are
 * requested with timestamps and put back in time order before lines are cut: podman 4.3's `tail`
 * returns the pieces of a line written in two parts (Python's unbuffered `print` writes text and
 * newline separately) out of order. Sorting by timestamp (stable) repairs that, and costs nothing on
 * engines that are already in order.
 */

export interface LogFrame {
  stream: number;
  payload: Buffer;
}

/** True if `buf` starts like a multiplexed stream (stream byte 0-2, three zero bytes). */
function looksMultiplexed(buf: Buffer): boolean {
  return buf.length >= 8 && buf[0]! <= 2 && buf[1] === 0 && buf[2] === 0 && buf[3] === 0;
}

/** The frames of a (possibly multiplexed) log buffer; a TTY log is one frame. */
export function demuxFrames(buf: Buffer): LogFrame[] {
  if (!looksMultiplexed(buf)) return buf.length ? [{ stream: 1, payload: buf }] : [];
  const frames: LogFrame[] = [];
  let offset = 0;
  while (offset + 8 <= buf.length) {
    const length = buf.readUInt32BE(offset + 4);
    frames.push({ stream: buf[offset]!, payload: buf.subarray(offset + 8, offset + 8 + length) });
    offset += 8 + length;
  }
  return frames;
}

/** Nanoseconds since the epoch of an RFC 3339 timestamp with up to 9 fractional digits, or undefined. */
export function timestampNs(ts: string): bigint | undefined {
  const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(ts);
  if (!m) return undefined;
  const seconds = Date.parse(`${m[1]}${m[3]}`);
  if (Number.isNaN(seconds)) return undefined;
  return BigInt(seconds) * 1_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'));
}

/**
 * The text of a log requested with `timestamps=true`: each frame's leading timestamp is removed and
 * the frames are stably sorted by it. Frames without a timestamp keep their place after the previous one.
 */
export function timestampedText(buf: Buffer): string {
  let last = 0n;
  const pieces = demuxFrames(buf).map((frame, index) => {
    const text = frame.payload.toString('utf8');
    const space = text.indexOf(' ');
    const ns = space > 0 ? timestampNs(text.slice(0, space)) : undefined;
    if (ns !== undefined) last = ns;
    return { ns: ns ?? last, index, text: ns !== undefined ? text.slice(space + 1) : text };
  });
  pieces.sort((a, b) => (a.ns < b.ns ? -1 : a.ns > b.ns ? 1 : a.index - b.index));
  return pieces.map((p) => p.text).join('');
}

/** The last `n` lines of `text`, oldest first, without the trailing empty line. */
export function lastLines(text: string, n: number): string[] {
  const lines = text.split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  return n > 0 ? lines.slice(-n).map((l) => l.replace(/\r$/, '')) : [];
}
