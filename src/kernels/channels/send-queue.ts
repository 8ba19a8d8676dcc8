/**
 * Ordered sending on one ZMQ socket. zeromq.js allows a single `send()` in flight while a socket is
 * in the mute state (high-water mark reached); messages sent meanwhile wait here, in order, instead
 * of failing with EBUSY. In the common case `send()` queues at once and nothing waits. The bytes
 * held here (waiting, and the one send in flight) are counted so the bridge can apply backpressure.
 */
import type { Dealer } from 'zeromq';

const sizeOf = (frames: Buffer[]): number => frames.reduce((n, f) => n + f.length, 0);

export class SendQueue {
  private waiting: Buffer[][] | undefined;
  private closed = false;
  private held = 0;

  constructor(
    private readonly socket: Dealer,
    private readonly onError: (err: Error) => void,
    /** Called after the bytes held went down (a send was accepted by ZMQ). */
    private readonly onDrain: () => void = () => undefined,
  ) {}

  /** Bytes of messages not yet accepted by ZMQ. */
  get bytes(): number {
    return this.held;
  }

  push(frames: Buffer[]): void {
    if (this.closed) return;
    this.held += sizeOf(frames);
    if (this.waiting) this.waiting.push(frames);
    else {
      this.waiting = [];
      this.pump(frames);
    }
  }

  /** Drops what is waiting; later pushes are ignored. Idempotent. */
  close(): void {
    this.closed = true;
    this.waiting = undefined;
    this.held = 0;
  }

  private pump(frames: Buffer[]): void {
    this.socket.send(frames).then(
      () => {
        if (!this.closed) this.held -= sizeOf(frames);
        const next = this.closed ? undefined : this.waiting?.shift();
        if (next) this.pump(next);
        else this.waiting = undefined;
        this.onDrain();
      },
      (err: Error) => {
        this.waiting = undefined;
        this.held = 0;
        if (!this.closed) this.onError(err);
        this.onDrain();
      },
    );
  }
}
