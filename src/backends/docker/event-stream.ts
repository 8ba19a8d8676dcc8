/**
 * One `/events` stream from the engine, filtered to our containers and the events that change a
 * workload's phase (start, die, oom, destroy — podman says remove). Reconnects with exponential backoff and asks for the
 * events it may have missed (`since` = the last event seen, or when watching began), so a brief daemon
 * restart loses nothing. Decodes the stream of JSON objects whether or not they are newline-separated.
 */
import type Docker from 'dockerode';
import type { DockerBackendLogger } from './options';

export interface EngineEvent {
  Type?: string;
  Action?: string;
  status?: string;
  id?: string;
  time?: number;
  timeNano?: number;
  Actor?: { ID?: string; Attributes?: Record<string, string> };
}

export interface EventStreamOptions {
  docker: Docker;
  /** `label=value` filter selecting our containers. */
  label: string;
  log: DockerBackendLogger;
  reconnectDelayMs: number;
  onEvent: (e: EngineEvent) => void;
}

const MAX_DELAY_MS = 30_000;

/** Splits a byte stream of concatenated JSON objects into objects (tolerates newlines or none). */
export class JsonObjectSplitter {
  private buf = '';
  private depth = 0;
  private inString = false;
  private escaped = false;
  private start = -1;

  push(chunk: string, emit: (text: string) => void): void {
    const base = this.buf.length;
    this.buf += chunk;
    for (let i = base; i < this.buf.length; i++) {
      const ch = this.buf[i];
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (ch === '\\') this.escaped = true;
        else if (ch === '"') this.inString = false;
        continue;
      }
      if (ch === '"') this.inString = true;
      else if (ch === '{') {
        if (this.depth++ === 0) this.start = i;
      } else if (ch === '}' && this.depth > 0 && --this.depth === 0) {
        emit(this.buf.slice(this.start, i + 1));
        this.start = -1;
      }
    }
    // Keep only an unfinished object.
    if (this.depth === 0) this.buf = '';
    else if (this.start > 0) {
      this.buf = this.buf.slice(this.start);
      this.start = 0;
    }
  }
}

export class EventStream {
  private stream: NodeJS.ReadableStream | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private delay: number;
  /** Seconds since the epoch: replay from here after a reconnect. */
  private since: number;

  constructor(private readonly opts: EventStreamOptions) {
    this.delay = opts.reconnectDelayMs;
    this.since = Math.floor(Date.now() / 1000);
    this.connect();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const s = this.stream as (NodeJS.ReadableStream & { destroy?: () => void }) | undefined;
    this.stream = undefined;
    s?.removeAllListeners();
    s?.on('error', () => undefined);
    s?.destroy?.();
  }

  private connect(): void {
    if (this.closed) return;
    const { docker, label, log } = this.opts;
    docker.getEvents(
      {
        since: this.since,
        // No `event` filter: podman 4 matches it against its own names ("died"), not Docker's ("die").
        // The handler picks the actions it cares about.
        filters: { type: ['container'], label: [label] },
      },
      (err, stream) => {
        if (this.closed) {
          (stream as { destroy?: () => void } | undefined)?.destroy?.();
          return;
        }
        if (err || !stream) {
          log.warn('docker event stream failed to open; retrying', { error: err, delayMs: this.delay });
          this.retry();
          return;
        }
        this.stream = stream;
        this.delay = this.opts.reconnectDelayMs;
        const splitter = new JsonObjectSplitter();
        stream.setEncoding?.('utf8');
        stream.on('data', (chunk: Buffer | string) => {
          splitter.push(String(chunk), (text) => this.dispatch(text));
        });
        const ended = (error?: unknown) => {
          if (this.stream !== stream) return;
          this.stream = undefined;
          if (!this.closed) {
            log.warn('docker event stream ended; reconnecting', { error, delayMs: this.delay });
            this.retry();
          }
        };
        stream.on('error', ended);
        stream.on('end', () => ended());
        stream.on('close', () => ended());
      },
    );
  }

  private dispatch(text: string): void {
    let event: EngineEvent;
    try {
      event = JSON.parse(text) as EngineEvent;
    } catch (err) {
      this.opts.log.warn('ignoring undecodable docker event', { error: err });
      return;
    }
    if (typeof event.time === 'number') this.since = Math.max(this.since, event.time);
    try {
      this.opts.onEvent(event);
    } catch (err) {
      this.opts.log.warn('docker event handler threw', { error: err });
    }
  }

  private retry(): void {
    if (this.closed || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.connect();
    }, this.delay);
    this.timer.unref();
    this.delay = Math.min(MAX_DELAY_MS, this.delay * 2);
  }
}
