/**
 * The database contract: one `query` for parameterized SQL, transactions, and health. Implemented by a
 * `pg` pool (external or embedded Postgres) and PGlite (tests, upgrades); both run the same SQL.
 */

export interface Queryable {
  /** Runs one parameterized statement ($1, $2 …) and returns its rows. Never interpolate values. */
  query<T = Record<string, unknown>>(sql: string, params?: readonly unknown[]): Promise<T[]>;
}

export interface Db extends Queryable {
  readonly kind: 'postgres' | 'pglite';
  /** Runs `fn` in one transaction (BEGIN … COMMIT, ROLLBACK on throw) on one connection. */
  tx<T>(fn: (q: Queryable) => Promise<T>): Promise<T>;
  /** Throws DatabaseUnavailableError when the database cannot answer `SELECT 1`. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** The database cannot be reached (connection refused, timeout, shutting down). Mapped to HTTP 503. */
export class DatabaseUnavailableError extends Error {
  override readonly name = 'DatabaseUnavailableError';
}
