/**
 * The kernel → client direction's byte budget: what one kernel can make spawngate hold for websocket
 * clients that do not read. `ws` queues every frame it cannot write yet (its `bufferedAmount`, the
 * socket's write buffer) without limit, as tornado does for Jupyter Server; a client that stops reading
 * would otherwise make spawngate keep everything the kernel says for it.
 *
 * - A websocket holding more than the budget pauses the reading of its kernel's ZMQ sockets, for every
 *   websocket of the kernel, until it has written down to half. The rest waits in the ZMQ pipes (bounded
 *   by their high-water marks) and in the kernel process, which is the user's own. So a burst larger
 *   than the budget, or a client briefly slower than its kernel, costs a short pause and loses nothing,
 *   and what spawngate holds per websocket stays within the budget plus the message that crossed it.
 * - Alone on its kernel, a slow websocket is only waited for: the kernel's output is its own.
 * - One of several that is still over budget after the grace period is closed (1008), and the kernel
 *   is read again: the others keep receiving, after at most that pause. Closing rather than skipping
 *   messages: a client that silently missed iopub would show wrong output; a closed one reconnects
 *   (Jupyter frontends do) and its session's replies are replayed.
 */
import type { WebSocket } from 'ws';

/** RFC 6455 1008 (policy violation): the client did not read what it was sent. */
export const SLOW_CLIENT_CLOSE_CODE = 1008;
export const SLOW_CLIENT_REASON = 'this client did not read its kernel messages; reconnect to resume';
/** A peer that cannot take the close frame (it does not read) is cut after this long. */
const CLOSE_GRACE_MS = 1000;

export interface ClientFlowOptions {
  /** Bytes a websocket may have waiting to be written (its `bufferedAmount`) before it counts as slow. */
  budgetBytes: number;
  /** How long one of several websockets may stay over budget (the kernel paused) before it is closed, ms. */
  graceMs: number;
  /** Websockets now attached to the kernel. */
  consumers(): number;
  /** Stop / restart reading the kernel's ZMQ sockets. */
  pauseKernel(): void;
  resumeKernel(): void;
  /** Forget a websocket that is being closed (no more messages for it). */
  drop(ws: WebSocket): void;
  log(event: 'pause' | 'resume' | 'close-slow', fields: Record<string, unknown>): void;
}

export class ClientFlow {
  /** Websockets over budget, each with the timer that closes it while others are attached. */
  private readonly slow = new Map<WebSocket, NodeJS.Timeout | undefined>();

  constructor(private readonly o: ClientFlowOptions) {}

  /** True while the kernel's reads are paused for a slow websocket. */
  get isPaused(): boolean {
    return this.slow.size > 0;
  }

  /** Call after a frame was queued on `ws`. */
  sent(ws: WebSocket): void {
    if (this.slow.has(ws) || ws.bufferedAmount <= this.o.budgetBytes) return;
    this.slow.set(ws, this.graceTimer(ws));
    if (this.slow.size === 1) {
      this.o.log('pause', { buffered_bytes: ws.bufferedAmount, consumers: this.o.consumers() });
      this.o.pauseKernel();
    }
  }

  /** Call when a frame of `ws` has been written to its socket (the `send` callback). */
  written(ws: WebSocket): void {
    if (this.slow.has(ws) && ws.bufferedAmount <= this.o.budgetBytes / 2) this.release(ws);
  }

  /** Call after a websocket was attached: a slow one that was alone now has company, and a grace period. */
  attached(): void {
    for (const [ws, timer] of this.slow) if (timer === undefined) this.slow.set(ws, this.graceTimer(ws));
  }

  /** Call when a websocket left (closed or detached). */
  detached(ws: WebSocket): void {
    if (this.slow.has(ws)) this.release(ws);
  }

  /** Forgets every websocket and resumes the kernel's reads. */
  clear(): void {
    for (const ws of [...this.slow.keys()]) this.release(ws);
  }

  private graceTimer(ws: WebSocket): NodeJS.Timeout | undefined {
    if (this.o.consumers() <= 1) return undefined;
    const timer = setTimeout(() => {
      if (this.slow.get(ws) !== timer) return;
      // Alone again (the others left): it is only waited for.
      if (this.o.consumers() <= 1) this.slow.set(ws, undefined);
      else this.cut(ws);
    }, this.o.graceMs);
    timer.unref();
    return timer;
  }

  private release(ws: WebSocket): void {
    const timer = this.slow.get(ws);
    if (timer) clearTimeout(timer);
    this.slow.delete(ws);
    if (this.slow.size === 0) {
      this.o.log('resume', { buffered_bytes: ws.bufferedAmount });
      this.o.resumeKernel();
    }
  }

  private cut(ws: WebSocket): void {
    const held = ws.bufferedAmount;
    this.release(ws);
    this.o.drop(ws);
    this.o.log('close-slow', { buffered_bytes: held, consumers: this.o.consumers() });
    ws.close(SLOW_CLIENT_CLOSE_CODE, SLOW_CLIENT_REASON);
    // The close frame waits behind everything the client did not read: the socket goes soon after.
    setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
  }
}
