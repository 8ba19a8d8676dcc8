/**
 * Test databases: a uniquely named database on the local Postgres per call (dropped through `drop()`),
 * and in-memory PGlite. SPAWNGATE_TEST_DATABASE_URL overrides the admin connection
 * (default postgres://root@127.0.0.1:5432/test, trust auth).
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import pg from 'pg';
import winston from 'winston';
import { createPgliteDb, createPostgresDb, type Db } from '../../src/db';

export const ADMIN_URL = process.env.SPAWNGATE_TEST_DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/test';

export interface TestPostgres {
  /** URL of the fresh database. */
  url: string;
  db: Db;
  /** Closes `db` and drops the database (even if other connections are open). */
  drop(): Promise<void>;
}

async function admin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Creates an empty database `spawngate_test_<random>` and a Db on it. */
export async function createTestPostgres(options: { logger?: winston.Logger } = {}): Promise<TestPostgres> {
  const name = `spawngate_test_${randomBytes(6).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  // Pool warnings (e.g. connections ended by DROP DATABASE … FORCE) are kept out of the test output.
  const db = createPostgresDb({
    url: url.toString(),
    max: 5,
    logger: options.logger ?? captureLogger().logger,
  });
  return {
    url: url.toString(),
    db,
    async drop() {
      await db.close().catch(() => undefined);
      await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

/**
 * Timeout for a hook (or test) that starts a database engine: PGlite compiles its WebAssembly and runs
 * initdb-like set-up, which on 2 cores shared with the rest of a suite takes far longer than jest's 30 s.
 */
export const ENGINE_START_TIMEOUT_MS = 120_000;

/** An empty in-memory PGlite database. */
export function createTestPglite(): Promise<Db> {
  return createPgliteDb({ dataDir: 'memory://' });
}

/** Both engines behind one shape, for suites that run on each (`describe.each(engines)`). */
export interface TestEngine {
  db: Db;
  close(): Promise<void>;
}

export const engines: [string, () => Promise<TestEngine>][] = [
  [
    'postgres',
    async () => {
      const t = await createTestPostgres();
      return { db: t.db, close: () => t.drop() };
    },
  ],
  [
    'pglite',
    async () => {
      const db = await createTestPglite();
      return { db, close: () => db.close() };
    },
  ],
];

/** The rejection of `p`, failing the test if it resolves. */
export async function rejectionOf(p: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try {
    await p;
  } catch (err) {
    return err as Error & Record<string, unknown>;
  }
  throw new Error('expected the promise to reject');
}

/** The administrator example of DESIGN.md §4, copied verbatim. */
export const ADMIN_EXAMPLE = `
INSERT INTO users (username) VALUES ('alice');
INSERT INTO experiments (name, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib)
  VALUES ('genomics', 0.5, 2, 512, 4096);
INSERT INTO environments (name, experiment_id) SELECT 'tf', id FROM experiments WHERE name = 'genomics';
INSERT INTO experiment_members (experiment_id, user_id)
  SELECT e.id, u.id FROM experiments e, users u WHERE e.name = 'genomics' AND u.username = 'alice';
`;

/** A logger that keeps its records in memory, so tests can assert on (and silence) warnings. */
export function captureLogger(): { logger: winston.Logger; records: Record<string, unknown>[] } {
  const records: Record<string, unknown>[] = [];
  const transport = new winston.transports.Stream({
    stream: new Writable({
      objectMode: true,
      write(chunk: Record<string, unknown>, _enc: string, done: () => void) {
        records.push(chunk);
        done();
      },
    }),
  });
  return { logger: winston.createLogger({ level: 'debug', transports: [transport] }), records };
}
