/**
 * `spawngate sql [-c <statement>]`: a SQL session on the service's database, embedded or external.
 * Runs psql when it is installed (password passed through the environment, never argv); otherwise, or
 * with --no-psql, a built-in line reader whose output follows psql's aligned format (sql-format.ts).
 * On the embedded default the running engine is used, or started for the session.
 */
import { spawn, spawnSync } from 'node:child_process';
import readline from 'node:readline';
import pg from 'pg';
import type { Config } from '../config';
import { embeddedUrl, enginePaths, openDatabase, type Db } from '../db';
import { formatResult } from './sql-format';

export interface SqlOptions {
  command?: string;
  psql: boolean;
}

/** Connection URL of the configured database and the password kept out of it. */
function connection(cfg: Config): { url: string; password?: string } {
  const configured = cfg.env.SPAWNGATE_DATABASE_URL;
  if (!configured) return { url: embeddedUrl(enginePaths(cfg.dataDir).socketDir) };
  const u = new URL(configured);
  const password = u.password ? decodeURIComponent(u.password) : undefined;
  u.password = '';
  return { url: u.toString(), password };
}

function hasPsql(): boolean {
  return spawnSync('psql', ['--version'], { stdio: 'ignore' }).status === 0;
}

function runPsql(url: string, password: string | undefined, command: string | undefined): Promise<number> {
  const args = ['-X', url, ...(command === undefined ? [] : ['-v', 'ON_ERROR_STOP=1', '-c', command])];
  return new Promise((resolve, reject) => {
    const child = spawn('psql', args, {
      stdio: 'inherit',
      env: { ...process.env, ...(password ? { PGPASSWORD: password } : {}), PGAPPNAME: 'spawngate sql' },
    });
    child.once('error', reject);
    child.once('exit', (code) => resolve(code ?? 1));
  });
}

async function runStatements(client: pg.Client, sql: string): Promise<void> {
  const result = (await client.query({ text: sql, rowMode: 'array' })) as unknown as pg.QueryResult | pg.QueryResult[];
  for (const r of Array.isArray(result) ? result : [result]) process.stdout.write(formatResult(r));
}

/** A minimal psql: statements end with `;`, `\q` quits. */
async function lineReader(client: pg.Client): Promise<number> {
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout, terminal: process.stdin.isTTY });
  let buffer = '';
  // Like psql, no prompt when reading a script from a pipe.
  const prompt = (): void => rl.setPrompt(!process.stdin.isTTY ? '' : buffer ? 'spawngate-# ' : 'spawngate=# ');
  prompt();
  rl.prompt();
  let status = 0;
  for await (const line of rl) {
    if (!buffer && /^\s*\\q\s*$/.test(line)) break;
    buffer += (buffer ? '\n' : '') + line;
    if (/;\s*$/.test(buffer)) {
      try {
        await runStatements(client, buffer);
      } catch (err) {
        status = 3;
        process.stderr.write(`ERROR:  ${(err as Error).message}\n`);
      }
      buffer = '';
    }
    prompt();
    rl.prompt();
  }
  rl.close();
  return status;
}

async function builtIn(url: string, password: string | undefined, command: string | undefined): Promise<number> {
  // Values as the server sends them (text), as psql shows them.
  const client = new pg.Client({ connectionString: url, password, application_name: 'spawngate sql', types: { getTypeParser: () => (v: string) => v } as pg.CustomTypesConfig });
  await client.connect();
  try {
    if (command === undefined) return await lineReader(client);
    try {
      await runStatements(client, command);
      return 0;
    } catch (err) {
      process.stderr.write(`ERROR:  ${(err as Error).message}\n`);
      return 1;
    }
  } finally {
    await client.end();
  }
}

/** Runs the session; resolves with the exit status. */
export async function runSql(cfg: Config, opts: SqlOptions): Promise<number> {
  // Holds the embedded engine (or checks the external database answers) for the session's length.
  const db: Db = await openDatabase({ databaseUrl: cfg.env.SPAWNGATE_DATABASE_URL, dataDir: cfg.dataDir });
  try {
    const { url, password } = connection(cfg);
    return opts.psql && hasPsql() ? await runPsql(url, password, opts.command) : await builtIn(url, password, opts.command);
  } finally {
    await db.close();
  }
}
