/**
 * The bridge's sending side towards one kernel: one `SendQueue` per request channel (shell, control,
 * stdin) and the per-kernel byte budget over all three. Past the budget the bridge stops reading its
 * websockets (`onPause`), so a kernel that does not read (stopped, stuck, slow) makes the clients'
 * TCP connections back up instead of spawngate's memory; at half the budget reading resumes.
 */
import type { Dealer } from 'zeromq';
import { SendQueue } from './send-queue';

export type RequestChannel = 'shell' | 'control' | 'stdin';

/** Default per-kernel byte budget (`KernelClientOptions.maxBufferedBytes`). */
export const DEFAULT_MAX_BUFFERED_BYTES = 32 * 1024 * 1024;
/**
 * Messages ZMQ itself queues per request socket before `send()` waits. Kept small: ZMQ counts
 * messages, not bytes, so the byte budget is enforced here, in front of it.
 */
export const REQUEST_SEND_HWM = 2;

export class RequestQueues {
  private readonly queues: Record<RequestChannel, SendQueue>;
  private paused = false;
  private closed = false;

  constructor(
    dealers: Record<RequestChannel, Dealer>,
    private readonly opts: {
      maxBufferedBytes: number;
      onError: (channel: RequestChannel, err: Error) => void;
      /** The budget is exceeded: stop reading websockets. */
      onPause: (bufferedBytes: number) => void;
      /** Half the budget drained: read websockets again. */
      onResume: (bufferedBytes: number) => void;
    },
  ) {
    const queue = (channel: RequestChannel): SendQueue =>
      new SendQueue(dealers[channel], (err) => opts.onError(channel, err), () => this.resumeIfDrained());
    this.queues = { shell: queue('shell'), control: queue('control'), stdin: queue('stdin') };
  }

  /** Bytes of client messages waiting for the kernel to read them. */
  get bytes(): number {
    return this.queues.shell.bytes + this.queues.control.bytes + this.queues.stdin.bytes;
  }

  /** True while websockets are paused (the budget was exceeded and has not drained yet). */
  get isPaused(): boolean {
    return this.paused;
  }

  push(channel: RequestChannel, frames: Buffer[]): void {
    this.queues[channel].push(frames);
    if (!this.paused && !this.closed && this.bytes > this.opts.maxBufferedBytes) {
      this.paused = true;
      this.opts.onPause(this.bytes);
    }
  }

  /** Drops everything waiting; later pushes are ignored. Idempotent. */
  close(): void {
    this.closed = true;
    this.paused = false;
    for (const q of Object.values(this.queues)) q.close();
  }

  private resumeIfDrained(): void {
    if (!this.paused || this.closed || this.bytes > this.opts.maxBufferedBytes / 2) return;
    this.paused = false;
    this.opts.onResume(this.bytes);
  }
}
