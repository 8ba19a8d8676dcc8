/**
 * The production `Db`: a `pg` connection pool. Owns connection-error mapping (every "cannot reach the
 * server" failure becomes a DatabaseUnavailableError whose message names host/port and never the
 * password), pool error handling (a dropped idle connection is logged, never crashes the process) and
 * recovery (the pool reconnects on the next query once Postgres is back; nothing to restart).
 *
 * Row values match PGlite: BIGINT (and BIGINT[]) come back as JS numbers (bigint when beyond 2^53),
 * NUMERIC as strings, TIMESTAMPTZ as Date, JSON/JSONB parsed.
 */
import pg from 'pg';
import { logger as defaultLogger, type Logger } from '../logging';
import { DatabaseUnavailableError, type Db, type Queryable } from './types';

export interface PostgresDbOptions {
  /** postgres:// URL; may carry a password, which never appears in errors or logs. */
  url: string;
  /** Maximum pool size (connections). Default 10. */
  max?: number;
  /** Milliseconds to wait for a new connection before failing with DatabaseUnavailableError. Default 3000. */
  connectionTimeoutMillis?: number;
  /** Client-side limit for one statement, ms (default 5000); past it the database counts as unavailable. */
  queryTimeoutMillis?: number;
  /** Where the URL came from, named in unavailability messages (e.g. `SPAWNGATE_DATABASE_URL`). */
  source?: string;
  logger?: Logger;
}

const INT8_OID = 20;
const INT8_ARRAY_OID = 1016;

function parseInt8(value: string): number | bigint {
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : BigInt(value);
}

/** pg's own lookup, typed by plain OID (its typings only accept the `builtins` enum). */
const defaultParser = pg.types.getTypeParser as (
  oid: number,
  format?: 'text' | 'binary',
) => (v: string) => unknown;
const baseInt8ArrayParser = defaultParser(INT8_ARRAY_OID, 'text') as (v: string) => (string | null)[];

/** Same text parsers as pg's defaults except BIGINT, which PGlite returns as a number. */
const typeParsers = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (format !== 'binary' && oid === INT8_OID) return parseInt8;
    if (format !== 'binary' && oid === INT8_ARRAY_OID)
      return (v: string) => baseInt8ArrayParser(v).map((x) => (x === null ? null : parseInt8(x)));
    return defaultParser(oid, format);
  },
} as pg.CustomTypesConfig;

/** `host:port/database` of a postgres URL, without user or password; `<invalid URL>` when unparsable. */
export function describePostgresUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return '<invalid URL>';
  }
  const socketHost = parsed.searchParams.get('host');
  const host = parsed.hostname || socketHost || 'localhost';
  const port = parsed.port || '5432';
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, '')) || '(default database)';
  return `${host}:${port}/${database}`;
}

function passwordOf(url: string): string | undefined {
  try {
    const p = new URL(url).password;
    return p ? decodeURIComponent(p) : undefined;
  } catch {
    return undefined;
  }
}

const CONNECTION_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'ECONNABORTED',
  // SQLSTATE: admin/crash shutdown, cannot connect now (starting up / recovering), too many connections.
  '57P01',
  '57P02',
  '57P03',
  '53300',
]);

const CONNECTION_ERROR_MESSAGES = [
  /connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /connection error and is not queryable/i,
  /server closed the connection unexpectedly/i,
  /query read timeout/i,
  /the database system is (starting up|shutting down|in recovery mode)/i,
];

/**
 * Duck-typed, not `instanceof Error`: socket errors come from Node's core realm, which under jest is
 * not the realm of this module.
 */
function isErrorLike(err: unknown): err is Error & { code?: unknown; errors?: unknown } {
  return (
    typeof err === 'object' && err !== null && typeof (err as { message?: unknown }).message === 'string'
  );
}

/** True when `err` means "the server cannot be reached or went away", not "the statement failed". */
export function isConnectionError(err: unknown): boolean {
  if (!isErrorLike(err)) return false;
  if (err instanceof DatabaseUnavailableError) return true;
  const code = err.code;
  if (typeof code === 'string' && (CONNECTION_ERROR_CODES.has(code) || code.startsWith('08'))) return true;
  // Happy-eyeballs connects (several addresses) fail with an AggregateError of the attempts.
  if (Array.isArray(err.errors) && err.errors.some(isConnectionError)) return true;
  return CONNECTION_ERROR_MESSAGES.some((re) => re.test(err.message));
}

function reasonOf(err: unknown): string {
  if (!isErrorLike(err)) return String(err);
  if (err.message) return err.message;
  if (Array.isArray(err.errors)) {
    const first = err.errors.find((e) => isErrorLike(e) && e.message !== '');
    if (first) return (first as Error).message;
  }
  return String(err.code ?? err.name);
}

/**
 * Creates a Db over a `pg` pool. Does not connect: the first query does, so a Db created while Postgres
 * is down starts working as soon as it is up. Call `ping()` to check at start-up.
 */
export function createPostgresDb(options: PostgresDbOptions): Db {
  const log = options.logger ?? defaultLogger;
  const where = describePostgresUrl(options.url);
  const password = passwordOf(options.url);
  const origin = options.source ? ` (${options.source})` : '';

  const scrub = (s: string): string => (password ? s.split(password).join('[REDACTED]') : s);

  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.max ?? 10,
    connectionTimeoutMillis: options.connectionTimeoutMillis ?? 3000,
    // A network partition leaves pooled connections open but silent: without a client-side timeout a
    // request would hang instead of answering 503. The pool discards a connection that timed out.
    query_timeout: options.queryTimeoutMillis ?? 5000,
    idleTimeoutMillis: 30_000,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    application_name: 'spawngate',
    types: typeParsers,
  });

  // An idle connection dropped by the server (restart, failover, idle kill) is removed by the pool; the
  // next query opens a new one. Without this listener the event would crash the process.
  pool.on('error', (err) => {
    log.warn('postgres connection lost; the pool will reconnect on next use', {
      database: where,
      reason: scrub(reasonOf(err)),
    });
  });

  /** Connection failures become DatabaseUnavailableError; SQL errors pass through unchanged. */
  function mapError(err: unknown): unknown {
    if (err instanceof DatabaseUnavailableError || !isConnectionError(err)) return err;
    const reason = scrub(reasonOf(err));
    return new DatabaseUnavailableError(`Postgres at ${where}${origin} is unavailable: ${reason}`, {
      cause: err,
    });
  }

  function rowsOf<T>(result: pg.QueryResult | pg.QueryResult[]): T[] {
    // A multi-statement simple query yields one result per statement; return the last one's rows.
    const last = Array.isArray(result) ? result[result.length - 1] : result;
    return (last?.rows ?? []) as T[];
  }

  async function run<T>(
    target: pg.Pool | pg.PoolClient,
    sql: string,
    params?: readonly unknown[],
  ): Promise<T[]> {
    try {
      // No parameters → simple protocol, which (as on PGlite) allows several statements in one string.
      const result =
        params && params.length > 0 ? await target.query(sql, [...params]) : await target.query(sql);
      return rowsOf<T>(result as pg.QueryResult | pg.QueryResult[]);
    } catch (err) {
      throw mapError(err);
    }
  }

  // A checked-out client has no pool listener; a connection lost between statements would otherwise
  // be an unhandled 'error' event. The failure surfaces through the client's next statement instead.
  const onClientError = (err: Error): void => {
    log.warn('postgres connection lost during a transaction', {
      database: where,
      reason: scrub(reasonOf(err)),
    });
  };

  /** Returns a client to the pool; a broken one is destroyed instead. */
  function checkIn(client: pg.PoolClient, broken?: Error): void {
    client.removeListener('error', onClientError);
    client.release(broken);
  }

  /**
   * Checks out a client and runs BEGIN on it. A pooled connection that died while idle (server restart)
   * can fail BEGIN before the pool noticed; nothing has run on it, so it is discarded and another tried.
   */
  async function begin(): Promise<pg.PoolClient> {
    const attempts = (options.max ?? 10) + 1;
    for (let attempt = 1; ; attempt++) {
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (err) {
        throw mapError(err);
      }
      client.on('error', onClientError);
      try {
        await client.query('BEGIN');
        return client;
      } catch (err) {
        const lost = isConnectionError(err);
        checkIn(client, lost ? (err as Error) : undefined);
        if (!lost || attempt >= attempts) throw mapError(err);
      }
    }
  }

  return {
    kind: 'postgres',

    query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]> {
      return run<T>(pool, sql, params);
    },

    async tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
      const client = await begin();
      let done = false;
      let broken: Error | undefined;
      const q: Queryable = {
        query<R = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<R[]> {
          if (done)
            return Promise.reject(
              new Error('transaction already finished; use the Db, not the tx Queryable'),
            );
          return run<R>(client, sql, params);
        },
      };
      try {
        const result = await fn(q);
        const commit = (await client.query('COMMIT').catch((err: unknown) => {
          throw mapError(err);
        })) as pg.QueryResult;
        if (commit.command === 'ROLLBACK') {
          throw new Error('transaction rolled back: a statement in it failed and the error was caught');
        }
        return result;
      } catch (err) {
        if (isConnectionError(err)) {
          broken = err as Error;
        } else {
          await client.query('ROLLBACK').catch((rollbackErr: Error) => {
            broken = rollbackErr;
          });
        }
        throw err;
      } finally {
        done = true;
        checkIn(client, broken);
      }
    },

    async ping(): Promise<void> {
      try {
        await run(pool, 'SELECT 1');
      } catch (err) {
        if (err instanceof DatabaseUnavailableError) throw err;
        const reason = scrub(reasonOf(err));
        throw new DatabaseUnavailableError(`Postgres at ${where}${origin} is unavailable: ${reason}`, {
          cause: err,
        });
      }
    },

    async close(): Promise<void> {
      await pool.end();
    },
  };
}
