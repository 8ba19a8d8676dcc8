/**
 * The data directory and everything in it are 0700/0600 whichever subcommand creates it (issue 11):
 * the CLI sets a 077 umask before anything else, and the embedded database's files (whose file
 * system layer ignores the umask) are made private too. Run through the built CLI, as an operator would.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

jest.setTimeout(120_000);

const CLI = path.resolve(__dirname, '..', '..', 'bin', 'spawngate.js');
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-data-dir-'));
fs.chmodSync(root, 0o755);

/** Every path below `dir` (itself included) whose mode has a group or other bit, with that mode. */
function loosePaths(dir: string): string[] {
  const out: string[] = [];
  const walk = (p: string): void => {
    const st = fs.lstatSync(p);
    if (!st.isSymbolicLink() && st.mode & 0o077) out.push(`${(st.mode & 0o777).toString(8)} ${path.relative(root, p)}`);
    if (st.isDirectory()) for (const e of fs.readdirSync(p)) walk(path.join(p, e));
  };
  walk(dir);
  return out;
}

function run(dataDir: string, ...args: string[]): { status: number | null; stdout: string; stderr: string } {
  // A permissive umask in the caller's shell must not matter.
  const r = spawnSync('/bin/sh', ['-c', 'umask 000; exec "$@"', 'sh', process.execPath, CLI, ...args], {
    env: { PATH: process.env.PATH, SPAWNGATE_DATA_DIR: dataDir },
    encoding: 'utf8',
    timeout: 90_000,
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('data dir modes: `spawngate migrate` on a fresh directory leaves no group/other bit on any file', () => {
  const dataDir = path.join(root, 'migrate', 'data');
  const r = run(dataDir, 'migrate');
  expect([r.status, r.stderr]).toEqual([0, '']);
  expect(r.stdout).toMatch(/^applied: /);
  expect(fs.readdirSync(path.join(dataDir, 'pg')).length).toBeGreaterThan(5);
  expect(loosePaths(dataDir)).toEqual([]);
  // The parent the CLI had to create on the way is private too (it is part of what it created).
  expect(fs.statSync(path.join(root, 'migrate')).mode & 0o077).toBe(0);
});

test('data dir modes: `spawngate token` and `spawngate admin` on a fresh directory are private as well', () => {
  const tokenDir = path.join(root, 'token');
  expect(run(tokenDir, 'token', '--user', 'alice').status).toBe(0);
  expect(loosePaths(tokenDir)).toEqual([]);
  const adminDir = path.join(root, 'admin');
  expect(run(adminDir, 'admin', 'users', 'create', 'alice').status).toBe(0);
  expect(loosePaths(adminDir)).toEqual([]);
});
