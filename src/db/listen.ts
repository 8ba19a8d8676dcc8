/**
 * LISTEN on one Postgres channel over a dedicated connection (a pooled one would be handed to other
 * queries and miss notifications), with a liveness signal a cache can trust.
 *
 * `live` is true only between a successful LISTEN and the first sign the connection may have missed
 * something: an error, the connection ending, or a heartbeat (`SELECT 1` on this same connection) not
 * answered in time. Postgres sends a listening session's notifications before the result of its next
 * statement, so a heartbeat that answers also proves that every notification committed before it was
 * sent has arrived. The subscriber hears each change of `live` (and must forget what it cached
 * whenever it goes false or comes back: notifications sent meanwhile are lost). Reconnects by itself.
 */
import pg from 'pg';
import type { Logger } from '../logging';
import type { ChannelHandlers, ChannelSubscription } from './types';

export interface ChannelListenerOptions {
  url: string;
  logger: Logger;
  /** For log lines: `host:port/database`, never the password. */
  where: string;
  scrub: (s: string) => string;
  /** Interval of the heartbeat on the listening connection. Default 1000 ms. */
  heartbeatMs?: number;
  /** A heartbeat (or connect + LISTEN) slower than this counts as a lost connection. Default 2000 ms. */
  timeoutMs?: number;
  /** Delay before reconnecting after a loss; doubles up to 10 s. Default 500 ms. */
  retryMs?: number;
}

const CHANNEL = /^[a-z_][a-z0-9_]{0,62}$/;

export function listenChannel(channel: string, handlers: ChannelHandlers, o: ChannelListenerOptions): ChannelSubscription {
  if (!CHANNEL.test(channel)) throw new Error(`invalid channel name ${JSON.stringify(channel)}`);
  const heartbeatMs = o.heartbeatMs ?? 1000;
  const timeoutMs = o.timeoutMs ?? 2000;
  let live = false;
  let closed = false;
  let client: pg.Client | undefined;
  let timer: NodeJS.Timeout | undefined;
  let retry = o.retryMs ?? 500;

  const setLive = (next: boolean): void => {
    if (live === next) return;
    live = next;
    handlers.state(next);
  };

  const schedule = (fn: () => void, ms: number): void => {
    timer = setTimeout(fn, ms);
    timer.unref();
  };

  const lost = (c: pg.Client, reason: string): void => {
    if (client !== c) return; // an older connection reporting late
    client = undefined;
    setLive(false);
    if (timer) clearTimeout(timer);
    c.removeAllListeners('notification');
    c.on('error', () => undefined);
    void c.end().catch(() => undefined);
    if (closed) return;
    o.logger.warn('postgres notification channel lost; cached credentials are not used until it is back', {
      channel,
      database: o.where,
      reason: o.scrub(reason),
      retry_ms: retry,
    });
    schedule(connect, retry);
    retry = Math.min(retry * 2, 10_000);
  };

  const heartbeat = (c: pg.Client): void => {
    schedule(() => {
      const t = setTimeout(() => lost(c, `heartbeat not answered within ${timeoutMs} ms`), timeoutMs);
      c.query('SELECT 1').then(
        () => {
          clearTimeout(t);
          if (client === c && !closed) heartbeat(c);
        },
        (err: Error) => {
          clearTimeout(t);
          lost(c, err.message);
        },
      );
    }, heartbeatMs);
  };

  const connect = (): void => {
    if (closed) return;
    const c = new pg.Client({
      connectionString: o.url,
      connectionTimeoutMillis: timeoutMs,
      keepAlive: true,
      application_name: 'spawngate-listen',
    });
    client = c;
    c.on('error', (err) => lost(c, err.message));
    c.on('end', () => lost(c, 'the connection ended'));
    c.on('notification', (n) => {
      if (n.channel === channel) handlers.message(n.payload ?? '');
    });
    const t = setTimeout(() => lost(c, `LISTEN not done within ${timeoutMs} ms`), timeoutMs);
    c.connect()
      .then(() => c.query(`LISTEN ${channel}`))
      .then(
        () => {
          clearTimeout(t);
          if (client !== c || closed) return;
          retry = o.retryMs ?? 500;
          setLive(true);
          heartbeat(c);
        },
        (err: Error) => {
          clearTimeout(t);
          lost(c, err.message);
        },
      );
  };

  connect();
  return {
    get live() {
      return live;
    },
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      const c = client;
      client = undefined;
      setLive(false);
      if (c) {
        c.on('error', () => undefined);
        await c.end().catch(() => undefined);
      }
    },
  };
}
