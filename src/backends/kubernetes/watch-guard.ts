/**
 * What client-node's `Watch` leaves to its caller, for one long-running watch:
 *
 * - a server-side `timeoutSeconds`, drawn at random from a range (as client-go's reflector does), so the
 *   watches of many namespaces and replicas do not all reconnect at the same moment;
 * - a client-side deadline (that timeout plus a slack): a half-open connection never delivers the
 *   server's clean close, and TCP keepalive alone takes minutes to notice;
 * - for watches that get bookmarks (pods), a watchdog: no line (event or bookmark) for `stallMs` ends
 *   the watch, and `fresh()` is false meanwhile so readers know the cache may be frozen;
 * - every abnormal end reported as an error to `done` — an ERROR event (then the server's clean close),
 *   a stall, a missed deadline, a connection closed at once without a line — so the caller restarts it
 *   with backoff instead of in a hot loop. A 410 keeps its `statusCode`, which makes client-node's
 *   `ListWatch` relist.
 *
 * It has client-node's `Watch` shape, so `ListWatch` (the informer) runs on it unchanged.
 */
import type * as K8s from '@kubernetes/client-node';

type Callback = (phase: string, apiObj: unknown, watchObj?: unknown) => void;
type Done = (err: unknown) => void;

/** Exponential backoff with "equal jitter" (half fixed, half random), capped. */
export class Backoff {
  private attempt = 0;

  constructor(
    private readonly o: { initialMs: number; maxMs: number },
    private readonly random: () => number = Math.random,
  ) {}

  /** The next delay; at least `minMs` (an API server's Retry-After). */
  next(minMs = 0): number {
    const base = Math.min(this.o.maxMs, this.o.initialMs * 2 ** Math.min(this.attempt, 30));
    this.attempt++;
    return Math.max(minMs, Math.round(base / 2 + (this.random() * base) / 2));
  }

  reset(): void {
    this.attempt = 0;
  }
}

export interface WatchGuardOptions {
  /** client-node's Watch (or anything of its shape). */
  watch: Pick<K8s.Watch, 'watch'>;
  /** Server-side `timeoutSeconds`, drawn uniformly from [min, max] per connection. */
  timeoutSeconds: readonly [number, number];
  /** Bookmarks are asked for and a watch without a line for this long is ended. 0: no bookmarks expected. */
  stallMs: number;
  /** How long after its `timeoutSeconds` a connection may stay open before it is ended client-side. */
  deadlineSlackMs: number;
  /** A connection healthy for this long resets `backoff`. */
  resetAfterMs: number;
  backoff: Backoff;
  random?: () => number;
}

/** An abnormal end of a watch; `statusCode` when the server said why. */
export class WatchEndedError extends Error {
  constructor(
    message: string,
    readonly statusCode?: number,
  ) {
    super(message);
    this.name = 'WatchEndedError';
  }
}

/** A connection that ends this soon without a single line counts as a failure (no hot reconnect loop). */
const CLOSED_AT_ONCE_MS = 1000;

export class WatchGuard {
  private connected = false;
  private lastLineAt = 0;
  private readonly random: () => number;

  constructor(private readonly o: WatchGuardOptions) {
    this.random = o.random ?? Math.random;
  }

  /** Connected, and (if bookmarks are expected) a line arrived within `stallMs`. */
  fresh(): boolean {
    return this.connected && (this.o.stallMs === 0 || Date.now() - this.lastLineAt < this.o.stallMs);
  }

  /** Drawn per connection, so watches spread out. */
  private timeoutSeconds(): number {
    const [min, max] = this.o.timeoutSeconds;
    return Math.max(1, Math.round(min + this.random() * Math.max(0, max - min)));
  }

  async watch(path: string, queryParams: Record<string, unknown>, callback: Callback, done: Done): Promise<AbortController> {
    const o = this.o;
    const timeoutSeconds = this.timeoutSeconds();
    const query = { ...queryParams, timeoutSeconds, ...(o.stallMs > 0 ? { allowWatchBookmarks: true } : {}) };
    const startedAt = Date.now();
    let lines = 0;
    let failure: WatchEndedError | undefined;
    let finished = false;
    // Set once connected; the callbacks below may run before (a failed connect ends at once).
    const conn: { stall?: NodeJS.Timeout; deadline?: NodeJS.Timeout; controller?: AbortController } = {};
    const finish = (err: unknown) => {
      if (finished) return;
      finished = true;
      this.connected = false;
      clearTimeout(conn.stall);
      clearTimeout(conn.deadline);
      if (!err && !failure && lines === 0 && Date.now() - startedAt < CLOSED_AT_ONCE_MS) {
        failure = new WatchEndedError('watch closed by the server at once, without an event');
      }
      if (!err && !failure && Date.now() - startedAt >= o.resetAfterMs) o.backoff.reset();
      done(err ?? failure ?? null);
    };
    const end = (why: string) => {
      finish(new WatchEndedError(why));
      conn.controller?.abort();
    };
    const onLine: Callback = (phase, obj, raw) => {
      lines++;
      this.lastLineAt = Date.now();
      conn.stall?.refresh();
      if (this.lastLineAt - startedAt >= o.resetAfterMs) o.backoff.reset();
      if (phase === 'ERROR') {
        const status = obj as { code?: number; message?: string } | undefined;
        failure = new WatchEndedError(`watch ERROR event: ${status?.message ?? 'no message'}`, status?.code);
      }
      callback(phase, obj, raw);
    };
    const controller = await o.watch.watch(path, query, onLine, finish);
    conn.controller = controller;
    if (finished) return controller;
    this.connected = true;
    this.lastLineAt = Date.now();
    if (o.stallMs > 0) {
      conn.stall = setTimeout(() => end(`watch stalled: no event or bookmark for ${o.stallMs} ms`), o.stallMs);
      conn.stall.unref();
    }
    conn.deadline = setTimeout(() => end(`watch still open ${o.deadlineSlackMs} ms after its ${timeoutSeconds} s timeout`), timeoutSeconds * 1000 + o.deadlineSlackMs);
    conn.deadline.unref();
    return controller;
  }
}

/** An API server's Retry-After (seconds) as milliseconds, from client-node's ApiException; else 0. */
export function retryAfterMs(err: unknown): number {
  const headers = (err as { headers?: Record<string, string | string[] | undefined> } | undefined)?.headers;
  const raw = headers?.['retry-after'] ?? headers?.['Retry-After'];
  const seconds = Number(Array.isArray(raw) ? raw[0] : raw);
  return Number.isFinite(seconds) && seconds > 0 ? Math.min(seconds, 600) * 1000 : 0;
}
