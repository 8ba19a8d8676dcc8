/**
 * Benchmark of issue 3: `GET /api/kernelspecs?user=<random user>` on spawngate's kernelspec router
 * versus Debian's jupyter_server 1.23 serving one user's 25 kernelspecs from JUPYTER_PATH.
 *
 *   npx tsx bench/kernelspecs/bench.ts [--users 10000] [--small 1000] [--duration 10] [--keep]
 *
 * Generates (in /tmp) a tree of N users × 5 conda envs (kernel.json + logo each) plus 20 shared
 * kernelspecs, for N = --small and N = --users. For each N it starts a fresh spawngate server process
 * (the router behind an admin token, as JupyterHub-less scripts would call it) and measures:
 *   - first request for a user (cold: nothing of that user in the index), sequential, 300 users;
 *   - index memory (heap after GC, before vs after every user was requested once);
 *   - 50 concurrent connections with autocannon, each request for a random user (steady state: the
 *     users are known, most requests find their TTL expired and revalidate with `stat`s).
 *   - one connection, random known users: the service time without queueing.
 * In the same run, jupyter_server's own `/api/kernelspecs` (no gateway, 25 kernelspecs in JUPYTER_PATH).
 *
 * autocannon runs in this process, on the same machine: on a 2-CPU box it takes one core from the
 * server, and under 50 connections latency is mostly queueing (≈ connections / throughput).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { NextFunction, Request, Response } from 'express';

// autocannon ships no types; the part used here:
interface AutocannonResult {
  latency: { p50: number; p99: number; average: number; max: number };
  requests: { average: number; total: number };
  non2xx: number;
  errors: number;
  timeouts: number;
}
type Autocannon = (opts: Record<string, unknown>) => Promise<AutocannonResult>;
const autocannon = require('autocannon') as Autocannon;

const ADMIN = 'bench-admin-token-0123456789';
const ENVS = ['base-py', 'tf', 'torch', 'r', 'geo'];
const SHARED = 20;
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
  'base64',
);

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? (process.argv[i + 1] as string) : fallback;
}

function kernel(dir: string, displayName: string, extra: Record<string, unknown> = {}): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'kernel.json'),
    JSON.stringify({
      argv: ['python', '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
      display_name: displayName,
      language: 'python',
      ...extra,
    }),
  );
  fs.writeFileSync(path.join(dir, 'logo-64x64.png'), PNG);
}

function generate(root: string, users: number): { homes: string; shared: string } {
  const homes = path.join(root, 'home');
  const shared = path.join(root, 'shared');
  const marker = path.join(root, `.complete-${users}`);
  if (fs.existsSync(marker)) return { homes, shared };
  const t0 = Date.now();
  // One shared kernelspec is `python3`: in jupyter_server's JUPYTER_PATH it then shadows the system
  // python3 (which kernel_dirs cannot exclude), so both servers list exactly 25.
  for (let s = 0; s < SHARED; s++)
    kernel(path.join(shared, s === 0 ? 'python3' : `shared-${String(s).padStart(2, '0')}`), `Shared ${s}`);
  for (let u = 0; u < users; u++) {
    for (const env of ENVS) {
      kernel(
        path.join(homes, `user${u}`, '.conda', 'envs', env, 'share', 'jupyter', 'kernels', 'python3'),
        `${env} (user${u})`,
      );
    }
  }
  fs.writeFileSync(marker, '');
  console.log(
    `generated ${users} users × ${ENVS.length} envs + ${SHARED} shared in ${((Date.now() - t0) / 1000).toFixed(1)} s at ${root}`,
  );
  return { homes, shared };
}

/** One user's 25 kernelspecs as a JUPYTER_PATH entry, for jupyter_server. */
function jupyterPath(root: string, homes: string, shared: string, user: string): string {
  const jp = path.join(root, `jupyter-path-${user}`);
  const kernels = path.join(jp, 'kernels');
  fs.rmSync(jp, { recursive: true, force: true });
  fs.mkdirSync(kernels, { recursive: true });
  for (const env of ENVS) {
    fs.cpSync(
      path.join(homes, user, '.conda', 'envs', env, 'share', 'jupyter', 'kernels', 'python3'),
      path.join(kernels, `conda-env-${env}-python3`),
      { recursive: true },
    );
  }
  for (const name of fs.readdirSync(shared))
    fs.cpSync(path.join(shared, name), path.join(kernels, name), { recursive: true });
  return jp;
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

const percentile = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
function get(
  url: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent, headers }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body, ms: performance.now() - t0 }));
      })
      .on('error', reject);
  });
}

// ---------------------------------------------------------------------------------------------
// Server mode (child process): the kernelspec router behind an admin token.
// ---------------------------------------------------------------------------------------------
async function serve(homes: string, shared: string): Promise<void> {
  const express = (await import('express')).default;
  const { KernelspecCatalog, KernelspecIndex } = await import('../../src/kernels');
  const { createKernelspecRouter } = await import('../../src/spawner-api');
  const { HttpError } = await import('../../src/spawner-api/errors');
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
  const index = new KernelspecIndex({ homeRoot: homes, sharedDirs: [shared] });
  const catalog = new KernelspecCatalog({ index });
  const app = express();
  app.set('etag', false);
  app.get('/__bench/memory', (_req, res) => {
    gc();
    gc();
    res.json({ ...process.memoryUsage(), ...index.stats() });
  });
  app.use(function benchIdentity(req, res, next) {
    if (req.get('authorization') === `token ${ADMIN}`) res.locals.identity = { kind: 'admin' };
    next();
  });
  app.use(createKernelspecRouter({ catalog }));
  app.use(function errorHandler(err: unknown, _req: Request, res: Response, _next: NextFunction) {
    const e = err instanceof HttpError ? err : new HttpError(500, String(err));
    res.status(e.status).json({ reason: e.reason, message: e.message });
  });
  process.on('SIGTERM', () => process.exit(0)); // lets --cpu-prof write its profile
  const server = app.listen(0, '127.0.0.1', () => {
    process.stdout.write(`PORT ${(server.address() as net.AddressInfo).port}\n`);
  });
}

// ---------------------------------------------------------------------------------------------
// Driver mode.
// ---------------------------------------------------------------------------------------------
interface Row {
  what: string;
  p50: number;
  p99: number;
  rps: number;
  one50?: number;
  one99?: number;
  first50?: number;
  first99?: number;
  memMB?: number;
  rssMB?: number;
  kernels?: number;
  errors: number;
}

async function startSpawngate(homes: string, shared: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    ['--expose-gc', '--import', 'tsx', __filename, '--serve', homes, shared],
    {
      cwd: path.resolve(__dirname, '..', '..'),
      env: { ...process.env, SPAWNGATE_LOG_LEVEL: 'error' },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /PORT (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.on('exit', (code) => reject(new Error(`server exited ${code}`)));
  });
  return { url: `http://127.0.0.1:${port}`, child };
}

async function benchSpawngate(users: number, root: string, duration: number): Promise<Row> {
  const { homes, shared } = generate(root, users);
  const { url, child } = await startSpawngate(homes, shared);
  const headers = { Authorization: `token ${ADMIN}` };
  try {
    await get(`${url}/api/kernelspecs`, headers); // shared kernelspecs loaded
    const before = JSON.parse((await get(`${url}/__bench/memory`, {})).body);
    // First request for a user: 300 random users never asked before, one at a time.
    const cold: number[] = [];
    const picked = new Set<number>();
    while (picked.size < Math.min(300, users)) picked.add(Math.floor(Math.random() * users));
    for (const u of picked) {
      const r = await get(`${url}/api/kernelspecs?user=user${u}`, headers);
      if (r.status !== 200 || Object.keys(JSON.parse(r.body).kernelspecs).length !== 25)
        throw new Error(`bad answer for user${u}: ${r.status} ${r.body.slice(0, 200)}`);
      cold.push(r.ms);
    }
    cold.sort((a, b) => a - b);
    // Every user once (16 at a time), then memory.
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        const a = new http.Agent({ keepAlive: true, maxSockets: 1 });
        for (let u = next++; u < users; u = next++) {
          await new Promise<void>((resolve, reject) =>
            http
              .get(`${url}/api/kernelspecs?user=user${u}`, { agent: a, headers }, (res) =>
                res.resume().on('end', resolve),
              )
              .on('error', reject),
          );
        }
        a.destroy();
      }),
    );
    const after = JSON.parse((await get(`${url}/__bench/memory`, {})).body);
    // Service time without queueing: one connection, random known users (each one revalidates).
    const single: number[] = [];
    for (let i = 0; i < 500; i++) {
      single.push(
        (await get(`${url}/api/kernelspecs?user=user${Math.floor(Math.random() * users)}`, headers)).ms,
      );
    }
    single.sort((x, y) => x - y);
    const result = await autocannon({
      url,
      connections: 50,
      duration,
      headers,
      requests: [
        {
          method: 'GET',
          setupRequest: (req: Record<string, unknown>) => ({
            ...req,
            path: `/api/kernelspecs?user=user${Math.floor(Math.random() * users)}`,
          }),
        },
      ],
    });
    return {
      what: `spawngate, ${users.toLocaleString('en')} users`,
      p50: result.latency.p50,
      p99: result.latency.p99,
      rps: result.requests.average,
      one50: percentile(single, 50),
      one99: percentile(single, 99),
      first50: percentile(cold, 50),
      first99: percentile(cold, 99),
      memMB: (after.heapUsed - before.heapUsed) / 2 ** 20,
      rssMB: after.rss / 2 ** 20,
      kernels: after.userKernels,
      errors: result.non2xx + result.errors + result.timeouts,
    };
  } finally {
    child.kill('SIGTERM');
  }
}

async function benchJupyterServer(root: string, duration: number): Promise<Row | undefined> {
  const py = '/usr/bin/python3';
  if (spawnSync(py, ['-c', 'import jupyter_server'], { stdio: 'ignore' }).status !== 0) {
    console.warn(
      'jupyter_server not installed (apt-get install -y python3-jupyter-server python3-ipykernel): skipped',
    );
    return undefined;
  }
  const { homes, shared } = generate(root, 1);
  const jp = jupyterPath(root, homes, shared, 'user0');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-bench-js-'));
  const port = await freePort();
  const token = 'bench-jupyter-token-0123456789';
  const args = [
    '-m',
    'jupyter_server',
    '--no-browser',
    '--ServerApp.ip=127.0.0.1',
    `--ServerApp.port=${port}`,
    `--ServerApp.token=${token}`,
    `--ServerApp.root_dir=${dir}`,
    '--KernelSpecManager.ensure_native_kernel=False',
    '--ServerApp.log_level=WARN',
  ];
  if (process.getuid?.() === 0) args.push('--allow-root');
  const child = spawn(py, args, {
    env: {
      PATH: '/usr/bin:/bin',
      HOME: dir,
      JUPYTER_PATH: jp,
      JUPYTER_CONFIG_DIR: path.join(dir, 'c'),
      JUPYTER_DATA_DIR: path.join(dir, 'd'),
      JUPYTER_RUNTIME_DIR: path.join(dir, 'r'),
    },
    stdio: 'ignore',
  });
  const url = `http://127.0.0.1:${port}`;
  const headers = { Authorization: `token ${token}` };
  try {
    let listed = -1;
    for (let i = 0; listed < 0; i++) {
      try {
        const r = await get(`${url}/api/kernelspecs`, headers);
        if (r.status === 200) listed = Object.keys(JSON.parse(r.body).kernelspecs).length;
      } catch (err) {
        if (i > 300) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    if (listed !== 25) throw new Error(`jupyter_server lists ${listed} kernelspecs, expected 25`);
    const result = await autocannon({ url: `${url}/api/kernelspecs`, connections: 50, duration, headers });
    return {
      what: 'jupyter_server 1.23 (one user, 25 specs in JUPYTER_PATH)',
      p50: result.latency.p50,
      p99: result.latency.p99,
      rps: result.requests.average,
      errors: result.non2xx + result.errors + result.timeouts,
    };
  } finally {
    child.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const f = (n: number | undefined, d = 1): string => (n === undefined || Number.isNaN(n) ? '—' : n.toFixed(d));

async function main(): Promise<void> {
  if (process.argv.includes('--serve')) {
    const i = process.argv.indexOf('--serve');
    return serve(process.argv[i + 1] as string, process.argv[i + 2] as string);
  }
  const users = Number(arg('users', '10000'));
  const small = Number(arg('small', '1000'));
  const duration = Number(arg('duration', '10'));
  const base = path.join(os.tmpdir(), 'sg-bench-kernelspecs');
  const rows: Row[] = [];
  const js = await benchJupyterServer(path.join(base, 'jupyter'), duration);
  for (const n of [small, users]) rows.push(await benchSpawngate(n, path.join(base, `users-${n}`), duration));
  if (js) rows.push(js);

  const header = [
    '',
    'p50 ms',
    'p99 ms',
    'req/s',
    '1-conn p50/p99 ms',
    'first req p50 ms',
    'first req p99 ms',
    'index heap MB',
    'RSS MB',
    'user specs',
    'errors',
  ];
  const lines = rows.map((r) => [
    r.what,
    f(r.p50),
    f(r.p99),
    f(r.rps, 0),
    r.one50 === undefined ? '—' : `${f(r.one50, 2)} / ${f(r.one99, 2)}`,
    f(r.first50),
    f(r.first99),
    f(r.memMB),
    f(r.rssMB, 0),
    r.kernels === undefined ? '—' : String(r.kernels),
    String(r.errors),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] as string).length)));
  const fmt = (cells: string[]): string =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  console.log(
    `\nGET /api/kernelspecs?user=<random user>, 50 connections, ${duration} s, ${os.cpus().length} CPUs, node ${process.version}`,
  );
  console.log(fmt(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const l of lines) console.log(fmt(l));
  const [a, b] = rows;
  if (a && b) {
    const checks: Array<[string, boolean]> = [
      [`p99 < 20 ms (${f(b.p99)})`, b.p99 < 20],
      [`first request p99 < 50 ms (${f(b.first99)})`, (b.first99 ?? Infinity) < 50],
      [`index memory < 200 MB (${f(b.memMB)})`, (b.memMB ?? Infinity) < 200],
      [
        `p50 flat 1k→10k within 20% (${f(a.p50)} → ${f(b.p50)})`,
        Math.abs(b.p50 - a.p50) <= Math.max(0.2 * a.p50, 1),
      ],
      [
        `p99 flat 1k→10k within 20% (${f(a.p99)} → ${f(b.p99)})`,
        Math.abs(b.p99 - a.p99) <= Math.max(0.2 * a.p99, 1),
      ],
    ];
    if (js)
      checks.unshift([`p50 ≤ 1/10 of jupyter_server's (${f(b.p50)} vs ${f(js.p50)})`, b.p50 <= js.p50 / 10]);
    for (const [what, ok] of checks) console.log(`${ok ? 'ok  ' : 'MISS'} ${what}`);
  }
  if (!process.argv.includes('--keep')) fs.rmSync(base, { recursive: true, force: true });
  agent.destroy();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
