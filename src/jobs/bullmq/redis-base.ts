/**
 * The one base the BullMQ producer, workers and event listener share: it owns the Redis connections
 * (the fail-fast producer client; the connection settings BullMQ's blocking clients are opened with),
 * key naming, the `guard` that turns "Redis is down" into `QueueUnavailableError` within the request
 * budget, rate-limited logging of connection errors, and `close()`.
 *
 * Two connection policies, on purpose:
 * - producer (add, counts, ping, waitFor look-ups — i.e. API requests): no offline queue, one retry per
 *   request, a command timeout, and a waiting budget; an API request gets an error in ~1–2 s instead
 *   of hanging. It still reconnects forever in the background.
 * - workers and listeners (BullMQ opens and owns them from `blockingConnection()`):
 *   `maxRetriesPerRequest: null` (BullMQ requires it) with the offline queue, reconnecting forever
 *   with a capped delay, so a worker rides out an outage and resumes without a restart.
 */
import type { RedisOptions as BullmqRedisOptions } from 'bullmq';
import { Redis } from 'ioredis';
import type { Logger } from '../../logging';
import { errorMessage } from '../common';
import { QueueUnavailableError } from '../types';

export interface RedisBaseOptions {
  redisUrl: string;
  prefix: string;
  queueName: string;
  logger: Logger;
  /** Budget for one producer call, including waiting for a connection, ms. */
  requestTimeoutMs: number;
  /** Upper bound of the reconnect back-off, ms. */
  reconnectMaxDelayMs: number;
}

const CONNECTION_ERROR =
  /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|Connection is closed|Stream isn't writeable|max retries per request|Command timed out|Socket closed|LOADING/i;
const LOG_REPEAT_MS = 30_000;

/** True if `err` means Redis could not be reached (as opposed to a bad command or a script error). */
export function isConnectionError(err: unknown): boolean {
  // Duck-typed: errors from Node's net module may come from another realm (e.g. under jest).
  if (typeof err !== 'object' || err === null) return false;
  const { name, message, code } = err as { name?: unknown; message?: unknown; code?: unknown };
  return (
    name === 'MaxRetriesPerRequestError' ||
    (typeof message === 'string' && CONNECTION_ERROR.test(message)) ||
    (typeof code === 'string' && CONNECTION_ERROR.test(code))
  );
}

export class RedisBase {
  readonly producer: Redis;
  readonly prefix: string;
  readonly logger: Logger;
  private readonly lastLogged = new Map<string, number>();
  private troubled = false;
  private closed = false;

  constructor(private readonly opts: RedisBaseOptions) {
    this.prefix = opts.prefix;
    this.logger = opts.logger;
    this.producer = new Redis(opts.redisUrl, {
      connectionName: `${opts.prefix}:${opts.queueName}:producer`,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: Math.max(1_000, opts.requestTimeoutMs),
      commandTimeout: opts.requestTimeoutMs + 1_000,
      retryStrategy: (times) => Math.min(100 * times, Math.min(1_000, opts.reconnectMaxDelayMs)),
    });
    this.producer.on('error', (err: Error) => {
      this.troubled = true;
      this.reportError('producer', err);
    });
    this.producer.on('ready', () => {
      if (this.troubled) this.logger.info('redis connection restored', { source: 'producer' });
      this.troubled = false;
    });
  }

  /** The BullMQ queue that holds jobs of `jobName` (one queue per name gives per-name concurrency). */
  queueName(jobName: string): string {
    return `${this.opts.queueName}.${jobName}`;
  }

  /** A key of ours (not BullMQ's) in this queue family's namespace. */
  key(suffix: string): string {
    return `${this.opts.prefix}:${this.opts.queueName}:${suffix}`;
  }

  /** Settings for the connections BullMQ opens itself (Worker, QueueEvents): wait for Redis, forever. */
  blockingConnection(): BullmqRedisOptions {
    const max = this.opts.reconnectMaxDelayMs;
    return {
      url: this.opts.redisUrl,
      maxRetriesPerRequest: null,
      enableOfflineQueue: true,
      connectTimeout: 5_000,
      retryStrategy: (times: number) => Math.min(200 * times, max),
    };
  }

  /**
   * Runs a producer operation within the request budget. Redis being unreachable (not connected now,
   * connection lost mid-call, or no answer in time) becomes `QueueUnavailableError` with the cause
   * attached; any other error is rethrown unchanged.
   */
  async guard<T>(what: string, fn: () => Promise<T>): Promise<T> {
    if (this.closed) throw new QueueUnavailableError('job queue is closed');
    const budget = this.opts.requestTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(new QueueUnavailableError(`job queue: Redis did not answer ${what} within ${budget} ms`)),
        budget,
      );
    });
    const op = (async () => {
      await this.ready(Math.min(1_000, budget), what);
      return fn();
    })();
    op.catch(() => undefined); // settled later than the timeout: nobody is listening any more
    try {
      return await Promise.race([op, timeout]);
    } catch (err) {
      if (err instanceof QueueUnavailableError) throw err;
      if (isConnectionError(err) || this.producer.status !== 'ready') {
        throw new QueueUnavailableError(`job queue: Redis unreachable during ${what}: ${errorMessage(err)}`, {
          cause: err,
        });
      }
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Resolves when the producer connection is ready; QueueUnavailableError after `waitMs`. */
  private ready(waitMs: number, what: string): Promise<void> {
    const client = this.producer;
    if (client.status === 'ready') return Promise.resolve();
    if (client.status === 'wait') void client.connect().catch(() => undefined);
    return new Promise((resolve, reject) => {
      const onReady = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        client.off('ready', onReady);
        reject(new QueueUnavailableError(`job queue: Redis unreachable (${client.status}) during ${what}`));
      }, waitMs);
      client.once('ready', onReady);
    });
  }

  /** Logs connection trouble once per source and message every 30 s, so an outage does not flood logs. */
  reportError(source: string, err: unknown): void {
    const message = errorMessage(err);
    const key = `${source}\u0000${message}`;
    const now = Date.now();
    const last = this.lastLogged.get(key);
    if (last !== undefined && now - last < LOG_REPEAT_MS) return;
    this.lastLogged.set(key, now);
    if (this.lastLogged.size > 200) this.lastLogged.clear();
    const level = isConnectionError(err) ? 'warn' : 'error';
    this.logger.log(level, 'job queue redis error', { source, error: message });
  }

  /** Closes the producer connection (politely if Redis answers, at once otherwise). Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const client = this.producer;
    if (client.status === 'ready') {
      await Promise.race([
        client.quit().catch(() => undefined),
        new Promise((r) => setTimeout(r, 1_000).unref()),
      ]);
    }
    client.disconnect();
  }
}
