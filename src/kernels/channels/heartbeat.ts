/**
 * Kernel liveness over the heartbeat channel: a REQ socket sends `ping` every interval and the
 * kernel echoes it. After `missedBeats` unanswered beats in a row the kernel is reported dead;
 * a beat answered later (a restarted process on the same ports) reports it alive again.
 *
 * The REQ socket is relaxed and correlated, so a missed reply never wedges it and a late echo is
 * never mistaken for the current one (jupyter_client reopens its socket instead).
 */
import { Request } from 'zeromq';
import { KERNEL_CONNECT_TIMEOUT_MS } from './connection-info';

export interface HeartbeatOptions {
  /** Time between beats, ms; default 1000. */
  intervalMs?: number;
  /** How long one beat waits for its echo, ms; default `intervalMs`. */
  timeoutMs?: number;
  /** Consecutive unanswered beats before the kernel counts as dead; default 3. */
  missedBeats?: number;
}

export interface HeartbeatEvents {
  onDead(): void;
  onAlive(): void;
}

const PING = Buffer.from('ping');

export class Heartbeat {
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly missedBeats: number;
  private readonly socket: Request;
  private missed = 0;
  private dead = false;
  private paused = false;
  private stopped = false;
  private wake: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly done: Promise<void>;

  constructor(
    address: string,
    options: HeartbeatOptions,
    ipv6: boolean,
    private readonly events: HeartbeatEvents,
  ) {
    this.intervalMs = options.intervalMs ?? 1000;
    this.timeoutMs = options.timeoutMs ?? this.intervalMs;
    this.missedBeats = Math.max(1, options.missedBeats ?? 3);
    this.socket = new Request({
      linger: 0,
      relaxed: true,
      correlate: true,
      receiveTimeout: this.timeoutMs,
      sendTimeout: this.timeoutMs,
      connectTimeout: KERNEL_CONNECT_TIMEOUT_MS,
      ipv6,
    });
    this.socket.connect(address);
    this.done = this.run();
  }

  /** True once `missedBeats` beats in a row went unanswered, until one is answered again. */
  get isDead(): boolean {
    return this.dead;
  }

  /** Stops counting misses (e.g. while the kernel is being restarted on purpose). Idempotent. */
  pause(): void {
    this.paused = true;
  }

  /** Resumes counting, from zero misses. Idempotent. */
  resume(): void {
    this.paused = false;
    this.missed = 0;
  }

  /** Stops beating and closes the socket; resolves when the loop has ended. Idempotent. */
  async stop(): Promise<void> {
    if (!this.stopped) {
      this.stopped = true;
      if (this.timer) clearTimeout(this.timer);
      this.wake?.();
      this.socket.close();
    }
    await this.done;
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      const started = Date.now();
      if (!this.paused) await this.beat();
      if (this.stopped) break;
      await this.sleep(Math.max(0, this.intervalMs - (Date.now() - started)));
    }
  }

  private async beat(): Promise<void> {
    let answered = false;
    try {
      await this.socket.send(PING);
      await this.socket.receive();
      answered = true;
    } catch {
      // EAGAIN: no echo (or the send could not be queued) within timeoutMs; or the socket closed.
    }
    if (this.stopped || this.paused) return;
    if (answered) {
      this.missed = 0;
      if (this.dead) {
        this.dead = false;
        this.events.onAlive();
      }
    } else if (++this.missed >= this.missedBeats && !this.dead) {
      this.dead = true;
      this.events.onDead();
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(resolve, ms);
    });
  }
}
