/**
 * Ordered sending on one ZMQ socket. zeromq.js allows a single `send()` in flight while a socket is
 * in the mute state (high-water mark reached); messages sent meanwhile wait here, in order, instead
 * of failing with EBUSY. In the common case `send()` queues at once and nothing waits.
 */
import type { Dealer } from 'zeromq';

export class SendQueue {
  private waiting: Buffer[][] | undefined;
  private closed = false;

  constructor(
    private readonly socket: Dealer,
    private readonly onError: (err: Error) => void,
  ) {}

  push(frames: Buffer[]): void {
    if (this.closed) return;
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
  }

  private pump(frames: Buffer[]): void {
    this.socket.send(frames).then(
      () => {
        const next = this.closed ? undefined : this.waiting?.shift();
        if (next) this.pump(next);
        else this.waiting = undefined;
      },
      (err: Error) => {
        this.waiting = undefined;
        if (!this.closed) this.onError(err);
      },
    );
  }
}
