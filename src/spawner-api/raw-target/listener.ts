/**
 * Serves an `http.Server` through a listener of our own whose connections pass through
 * `RequestTargetRewriter` before Node's parser sees them (see rewriter.ts for why and what changes).
 * Each TCP socket is wrapped in a `Duplex` and injected with `server.emit('connection', …)`, the way
 * Node documents for handing a server a stream of any kind; HTTP, keep-alive, pipelining and
 * websocket upgrades then run unchanged on the wrapper, which forwards the socket API the server and
 * `ws` use (timeouts, no-delay, addresses).
 */
import net from 'node:net';
import type http from 'node:http';
import { Duplex } from 'node:stream';
import { RequestTargetRewriter } from './rewriter';

/** A request line held unfinished for this long closes the connection (Node's own headersTimeout default). */
export const HELD_LINE_TIMEOUT_MS = 60_000;

/** A TCP socket whose incoming bytes are rewritten by a `RequestTargetRewriter`. */
export class RawTargetSocket extends Duplex {
  private readonly rewriter = new RequestTargetRewriter();
  private heldTimer: NodeJS.Timeout | undefined;

  private readonly onData = (chunk: Buffer): void => {
    const out = this.rewriter.feed(chunk);
    this.watchHeldLine();
    if (out.length > 0 && !this.push(out)) this.inner.pause();
  };
  private readonly onEnd = (): void => {
    const rest = this.rewriter.flush();
    if (rest.length) this.push(rest);
    this.push(null);
  };
  private readonly onTimeout = (): void => void this.emit('timeout');
  private readonly onError = (err: Error): void => void this.destroy(err);
  private readonly onClose = (): void => {
    this.clearHeldTimer();
    if (!this.destroyed) this.destroy();
  };

  constructor(
    readonly inner: net.Socket,
    private readonly heldLineTimeoutMs = HELD_LINE_TIMEOUT_MS,
  ) {
    super({ allowHalfOpen: true });
    inner.on('data', this.onData);
    inner.on('end', this.onEnd);
    inner.on('timeout', this.onTimeout);
    inner.on('error', this.onError);
    inner.on('close', this.onClose);
  }

  /**
   * After an upgrade, when nothing HTTP follows: hands over the TCP socket itself, so websocket frames
   * no longer pass through this stream, with the bytes this wrapper had received but not yet delivered
   * (to be prepended to the upgrade's `head`). Call it right before the new owner takes the socket, in
   * the same tick. This wrapper then only mirrors the socket's close (and destroys it when destroyed).
   */
  detach(): { socket: net.Socket; unread: Buffer } {
    for (const [event, fn] of [['data', this.onData], ['end', this.onEnd], ['timeout', this.onTimeout], ['error', this.onError]] as const) {
      this.inner.removeListener(event, fn as (...args: unknown[]) => void);
    }
    this.clearHeldTimer();
    const unread: Buffer[] = [];
    for (let chunk = this.read() as Buffer | null; chunk !== null; chunk = this.read() as Buffer | null) unread.push(chunk);
    // Paused for this wrapper's backpressure: flowing resumes next tick, once the new owner listens.
    if (this.inner.isPaused()) this.inner.resume();
    return { socket: this.inner, unread: Buffer.concat(unread) };
  }

  /** A client that never finishes its request line must not hold a connection forever. */
  private watchHeldLine(): void {
    if (!this.rewriter.holding) return this.clearHeldTimer();
    this.heldTimer ??= setTimeout(() => this.inner.destroy(), this.heldLineTimeoutMs).unref();
  }

  private clearHeldTimer(): void {
    if (this.heldTimer) clearTimeout(this.heldTimer);
    this.heldTimer = undefined;
  }

  override _read(): void {
    this.inner.resume();
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.inner.write(chunk, encoding, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.inner.end(() => callback());
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.clearHeldTimer();
    this.inner.destroy();
    callback(error);
  }

  setTimeout(ms: number, callback?: () => void): this {
    this.inner.setTimeout(ms);
    if (callback) this.once('timeout', callback);
    return this;
  }

  setNoDelay(noDelay?: boolean): this {
    this.inner.setNoDelay(noDelay);
    return this;
  }

  setKeepAlive(enable?: boolean, initialDelay?: number): this {
    this.inner.setKeepAlive(enable, initialDelay);
    return this;
  }

  ref(): this {
    this.inner.ref();
    return this;
  }

  unref(): this {
    this.inner.unref();
    return this;
  }

  address(): ReturnType<net.Socket['address']> {
    return this.inner.address();
  }

  get remoteAddress(): string | undefined {
    return this.inner.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.inner.remotePort;
  }

  get remoteFamily(): string | undefined {
    return this.inner.remoteFamily;
  }

  get localAddress(): string | undefined {
    return this.inner.localAddress;
  }

  get localPort(): number | undefined {
    return this.inner.localPort;
  }

  get bytesRead(): number {
    return this.inner.bytesRead;
  }

  get bytesWritten(): number {
    return this.inner.bytesWritten;
  }
}

/**
 * The socket and head an upgrade handler should hand to its websocket server: the TCP socket itself
 * when `socket` is a `RawTargetSocket` (see `detach`), else `socket` and `head` unchanged.
 */
export function upgradedSocket(socket: Duplex, head: Buffer): { socket: Duplex; head: Buffer } {
  if (!(socket instanceof RawTargetSocket)) return { socket, head };
  const { socket: raw, unread } = socket.detach();
  return { socket: raw, head: unread.length ? Buffer.concat([head, unread]) : head };
}

/**
 * A listener feeding `server` rewritten connections: listen and close it instead of `server`. Its
 * 'listening' is relayed to `server`, which is where Node starts tracking the server's connections
 * (headersTimeout, requestTimeout, keep-alive idling); closing it closes `server` too, which stops that
 * tracking and closes idle keep-alive connections.
 */
export function createRawTargetListener(server: http.Server): net.Server {
  const listener = net.createServer({ allowHalfOpen: true }, (socket) => server.emit('connection', new RawTargetSocket(socket)));
  listener.on('listening', () => server.emit('listening'));
  const close = listener.close.bind(listener);
  listener.close = (callback?: (err?: Error) => void) => {
    close(callback);
    server.close();
    return listener;
  };
  return listener;
}
