/**
 * Runs the built CLI (bin/spawngate.js) against an embedded-default data directory: one-shot
 * subcommands, and `serve` as a child process whose URL is read from its log.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const CLI = path.resolve(__dirname, '..', '..', 'bin', 'spawngate.js');
export const HUB_TOKEN = 'hub-token-for-embedded-tests-0123456789';

/** A fresh, short data directory path (the engine's socket path is limited to 107 bytes). */
export function freshDataDir(label: string): string {
  return path.join(fs.mkdtempSync(path.join(os.tmpdir(), `sg-${label}-`)), 'data');
}

export function envFor(dataDir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, HOME: process.env.HOME, SPAWNGATE_DATA_DIR: dataDir, SPAWNGATE_PORT: '0', SPAWNGATE_BIND: '127.0.0.1', SPAWNGATE_HUB_TOKEN: HUB_TOKEN, ...extra };
}

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function cli(dataDir: string, args: string[], opts: { input?: string; env?: Record<string, string> } = {}): CliResult {
  const r = spawnSync(process.execPath, [CLI, ...args], { env: envFor(dataDir, opts.env), input: opts.input, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Same, without blocking the test's event loop (for concurrent runs). */
export function cliAsync(dataDir: string, args: string[], input?: string): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: envFor(dataDir), stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.end(input ?? '');
    child.on('exit', (status) => resolve({ status, stdout, stderr }));
  });
}

export interface Serving {
  child: ChildProcess;
  url: string;
  stop(): Promise<void>;
}

/** Starts `spawngate serve` and resolves once /readyz answers 200. */
export async function startServe(dataDir: string, extra: Record<string, string> = {}): Promise<Serving> {
  const child = spawn(process.execPath, [CLI, 'serve'], { env: envFor(dataDir, extra), stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start:\n${log}`)), 30_000);
    child.stderr!.on('data', (d: Buffer) => {
      log += d.toString();
      const m = /"url":"(http:\/\/[^"]+)"/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.once('exit', (code) => reject(new Error(`serve exited (${code}):\n${log}`)));
  });
  for (let i = 0; i < 100; i++) {
    if ((await fetch(`${url}/readyz`).then((r) => r.status).catch(() => 0)) === 200) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const exited = new Promise<void>((r) => (child.exitCode !== null ? r() : child.once('exit', () => r())));
  return {
    child,
    url,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** postgres server processes whose data directory is below `dir`. */
export function postgresUnder(dir: string): string[] {
  try {
    return execFileSync('pgrep', ['-af', `bin/postgres -D ${dir}`], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

/** Entries below `dir` (itself included) with any group or other permission bit. */
export function notPrivate(dir: string): string[] {
  const bad: string[] = [];
  const walk = (p: string): void => {
    const st = fs.lstatSync(p);
    if (!st.isSymbolicLink() && st.mode & 0o077) bad.push(`${p} ${(st.mode & 0o777).toString(8)}`);
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
  };
  walk(dir);
  return bad;
}

export async function waitGone(dir: string, ms = 10_000): Promise<string[]> {
  const deadline = Date.now() + ms;
  while (postgresUnder(dir).length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  return postgresUnder(dir);
}
