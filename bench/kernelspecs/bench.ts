/**
 * Benchmark of issue 15 (listing speed): `GET /api/kernelspecs?user=<random user>` through the
 * service's real request path (bench/kernelspecs/server.ts: the raw-target listener, createApp, a
 * per-user gateway token looked up in Postgres on every request, the kernelspec router) versus jupyter_server 1.23 listing its own
 * 25 kernelspecs, in the same run, with the same load: 16 keep-alive connections for --duration s.
 *
 *   npx tsx bench/kernelspecs/bench.ts [--users 1000,2000,5000,10000] [--duration 10] [--rounds 3] [--connections 16] [--keep] [--ttl ms]
 *
 * `--ttl` sets the index's ttlMs (and so maxStaleMs): with a large one (600000) no request checks its
 * home, which isolates what the 2 s freshness costs from everything else.
 *
 * Needs the local Postgres (SPAWNGATE_BENCH_DATABASE_URL, default postgres://root@127.0.0.1:5432/test;
 * a database `spawngate_bench_<random>` is created and dropped) and, for the peer, Debian's
 * python3-jupyter-server. The load generator is autocannon (a devDependency: nothing to install); its
 * own histogram rounds to whole milliseconds, so each response's exact time is taken from its
 * `response` event and the percentiles are computed here. It runs in this process on the same machine
 * as both servers, so it competes with them for CPU — state the machine's load with the figures.
 *
 * At 2,000 users a second row uses the admin token (naming the user): the same answer without any
 * token lookup, which shows what the lookup (statements shared between concurrent requests) costs.
 *
 * For each N (homes user0…user<N-1>, 5 conda envs each, plus 20 shared kernelspecs: 25 per user) a
 * fresh server process: 300 first requests for users never seen (one at a time), then every user once
 * (memory of the index after GC). Once every server is ready, each is loaded in turn, `--rounds` times
 * over, with a random user per request, the index revalidating as it goes; a row is the median of its
 * rounds (runs on this machine differ by more than the goals' 20 %, and interleaving makes a
 * disturbance touch every size alike).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createPostgresDb, migrate, mintToken } from '../../src/db';
import { generate, PER_USER, startJupyterServer } from './tree';

interface AutocannonInstance extends PromiseLike<{ non2xx: number; errors: number; timeouts: number }> {
  on(event: 'response', fn: (client: unknown, status: number, bytes: number, ms: number) => void): void;
}
// autocannon ships no types; the part used here:
const autocannon = require('autocannon') as (opts: Record<string, unknown>) => AutocannonInstance;

const ADMIN = `bench-admin-${randomBytes(12).toString('hex')}`;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? (process.argv[i + 1] as string) : fallback;
}

const percentile = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
function get(url: string, headers: Record<string, string>): Promise<{ status: number; body: string; ms: number }> {
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

interface Row {
  what: string;
  users?: number;
  /** Server CPU (user + system, all threads) per request during the load, µs. */
  cpuUs?: number;
  p50: number;
  p90: number;
  p99: number;
  rps: number;
  first50?: number;
  first99?: number;
  heapMB?: number;
  rssMB?: number;
  errors: number;
}

/** CPU seconds (user + system, all threads) a process has used so far, from /proc; NaN elsewhere. */
function cpuSeconds(pid: number | undefined): number {
  try {
    const fields = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    // utime and stime are fields 14 and 15 of stat(5), counted from after the command name.
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

/** Load: `connections` connections, each request built by `pick` (path and headers), exact latencies. */
async function load(
  url: string,
  pid: number | undefined,
  duration: number,
  connections: number,
  pick: () => { path: string; headers: Record<string, string> },
): Promise<Pick<Row, 'p50' | 'p90' | 'p99' | 'rps' | 'errors' | 'cpuUs'>> {
  const samples: number[] = [];
  const cpu0 = cpuSeconds(pid);
  const started = performance.now();
  const inst = autocannon({
    url,
    connections,
    duration,
    requests: [{ method: 'GET', setupRequest: (req: Record<string, unknown>) => ({ ...req, ...pick() }) }],
  });
  inst.on('response', (_c, status, _b, ms) => {
    if (status === 200) samples.push(ms);
  });
  const r = await inst;
  const seconds = (performance.now() - started) / 1000;
  const cpuUs = ((cpuSeconds(pid) - cpu0) / Math.max(1, samples.length)) * 1e6;
  samples.sort((a, b) => a - b);
  return {
    p50: percentile(samples, 50),
    p90: percentile(samples, 90),
    p99: percentile(samples, 99),
    rps: samples.length / seconds,
    errors: r.non2xx + r.errors + r.timeouts,
    cpuUs,
  };
}

async function startSpawngate(homes: string, shared: string, dbUrl: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    // SPAWNGATE_BENCH_NODE_ARGS, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`, to profile the server.
    [...(process.env.SPAWNGATE_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean), '--expose-gc', '--import', 'tsx', path.join(__dirname, 'server.ts'), homes, shared, dbUrl, ADMIN],
    {
      cwd: path.resolve(__dirname, '..', '..'),
      env: { ...process.env, SPAWNGATE_LOG_LEVEL: 'info', ...(arg('ttl', '') ? { SPAWNGATE_BENCH_TTL_MS: arg('ttl', '') } : {}) },
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

/** A spawngate server with every user asked once: what it cost, and how to load it. */
interface Prepared {
  what: string;
  users?: number;
  url: string;
  pid: number | undefined;
  headersOf: (u: number) => Record<string, string>;
  n: number;
  first50: number;
  first99: number;
  heapMB: number;
  rssMB: number;
  /** SIGTERM, resolved once the process has exited (before its database is dropped). */
  stop: () => Promise<void>;
}

async function prepareSpawngate(
  users: number,
  tree: { homes: string; shared: string },
  dbUrl: string,
  tokens: string[],
  opts: { adminToken?: boolean },
): Promise<Prepared> {
  const { url, child } = await startSpawngate(tree.homes, tree.shared, dbUrl);
  // The admin token naming the user gets the same listing without a per-user token lookup.
  const headersOf = (u: number): Record<string, string> => ({ Authorization: `token ${opts.adminToken ? ADMIN : tokens[u]}` });
  try {
    const check = (u: number, r: { status: number; body: string }): void => {
      if (r.status !== 200 || Object.keys(JSON.parse(r.body).kernelspecs).length !== PER_USER)
        throw new Error(`bad answer for user${u}: ${r.status} ${r.body.slice(0, 200)}`);
    };
    check(0, await get(`${url}/api/kernelspecs?user=user0`, headersOf(0))); // shared kernelspecs loaded
    const before = JSON.parse((await get(`${url}/__bench/memory`, {})).body);
    // First request for a user: 300 random users never asked before, one at a time.
    const cold: number[] = [];
    const picked = new Set<number>();
    while (picked.size < Math.min(300, users - 1)) picked.add(1 + Math.floor(Math.random() * (users - 1)));
    for (const u of picked) {
      const r = await get(`${url}/api/kernelspecs?user=user${u}`, headersOf(u));
      check(u, r);
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
              .get(`${url}/api/kernelspecs?user=user${u}`, { agent: a, headers: headersOf(u) }, (res) => res.resume().on('end', resolve))
              .on('error', reject),
          );
        }
        a.destroy();
      }),
    );
    const after = JSON.parse((await get(`${url}/__bench/memory`, {})).body);
    if (after.users !== users) throw new Error(`index holds ${after.users} users, expected ${users}`);
    return {
      what: `spawngate, ${users.toLocaleString('en')} users${opts.adminToken ? ', admin token (no token lookup)' : ''}`,
      users: opts.adminToken ? undefined : users,
      url,
      pid: child.pid,
      headersOf,
      n: users,
      first50: percentile(cold, 50),
      first99: percentile(cold, 99),
      heapMB: (after.heapUsed - before.heapUsed) / 2 ** 20,
      rssMB: after.rss / 2 ** 20,
      stop: () =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          child.once('exit', () => resolve());
          child.kill('SIGTERM');
        }),
    };
  } catch (err) {
    child.kill('SIGTERM');
    throw err;
  }
}

/** One load round on a prepared server: a random user per request. */
function loadSpawngate(s: Prepared, duration: number, connections: number): ReturnType<typeof load> {
  return load(s.url, s.pid, duration, connections, () => {
    const u = Math.floor(Math.random() * s.n);
    return { path: `/api/kernelspecs?user=user${u}`, headers: s.headersOf(u) };
  });
}

/** The median of each load figure over rounds (the machine's own noise is larger than the goals' 20 %). */
function medianOf(rounds: Array<Awaited<ReturnType<typeof load>>>): Awaited<ReturnType<typeof load>> {
  const med = (k: 'p50' | 'p90' | 'p99' | 'rps' | 'cpuUs'): number => {
    const v = rounds.map((r) => r[k] ?? NaN).sort((a, b) => a - b);
    return v[Math.floor((v.length - 1) / 2)]!;
  };
  return { p50: med('p50'), p90: med('p90'), p99: med('p99'), rps: med('rps'), cpuUs: med('cpuUs'), errors: rounds.reduce((n, r) => n + r.errors, 0) };
}

/** A fresh database with one gateway token per user; returns its URL, the tokens and how to drop it. */
async function benchDatabase(users: number): Promise<{ url: string; tokens: string[]; drop: () => Promise<void> }> {
  const adminUrl = process.env.SPAWNGATE_BENCH_DATABASE_URL ?? 'postgres://root@127.0.0.1:5432/test';
  const name = `spawngate_bench_${randomBytes(6).toString('hex')}`;
  const admin = async (sql: string): Promise<void> => {
    const c = new pg.Client({ connectionString: adminUrl });
    await c.connect();
    try {
      await c.query(sql);
    } finally {
      await c.end();
    }
  };
  await admin(`CREATE DATABASE ${name}`);
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  const db = createPostgresDb({ url: u.toString(), max: 8 });
  try {
    await migrate(db);
    const tokens = new Array<string>(users);
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let i = next++; i < users; i = next++) tokens[i] = await mintToken(db, { username: `user${i}`, kind: 'gateway' });
      }),
    );
    return { url: u.toString(), tokens, drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
  } finally {
    await db.close();
  }
}

const f = (n: number | undefined, d = 1): string => (n === undefined || Number.isNaN(n) ? '—' : n.toFixed(d));

async function main(): Promise<void> {
  const sizes = arg('users', '1000,2000,5000,10000').split(',').map(Number);
  const duration = Number(arg('duration', '10'));
  const connections = Number(arg('connections', '16'));
  const rounds = Math.max(1, Number(arg('rounds', '3')));
  const base = path.join(os.tmpdir(), 'sg-bench-kernelspecs');
  const max = Math.max(...sizes);
  const tree = generate(base, max);
  const database = await benchDatabase(max);
  const rows: Row[] = [];
  let js: Row | undefined;
  try {
    const peer = await startJupyterServer(base, tree.homes, tree.shared);
    if (peer) {
      try {
        const headers = { Authorization: `token ${peer.token}` };
        js = { what: `jupyter_server 1.23, its own ${PER_USER} specs`, ...(await load(peer.url, peer.pid, duration, connections, () => ({ path: '/api/kernelspecs', headers }))) };
      } finally {
        peer.stop();
      }
    } else {
      console.warn('jupyter_server not installed (apt-get install -y python3-jupyter-server python3-ipykernel): peer skipped');
    }
    if (js) console.log(`${js.what}: p50 ${f(js.p50, 2)} ms, p99 ${f(js.p99, 2)} ms, ${f(js.rps, 0)} req/s`);
    // Every server is prepared first, then loaded in turn, round after round: a disturbance of the
    // machine during one round then touches every size alike, and the median of the rounds is reported.
    const prepared: Prepared[] = [];
    try {
      for (const n of sizes) prepared.push(await prepareSpawngate(n, tree, database.url, database.tokens, {}));
      if (sizes.includes(2000)) prepared.push(await prepareSpawngate(2000, tree, database.url, database.tokens, { adminToken: true }));
      const results = prepared.map(() => [] as Array<Awaited<ReturnType<typeof load>>>);
      for (let round = 1; round <= rounds; round++) {
        for (const [i, s] of prepared.entries()) {
          const r = await loadSpawngate(s, duration, connections);
          results[i]!.push(r);
          console.log(`round ${round}, ${s.what}: p50 ${f(r.p50, 2)} ms, p99 ${f(r.p99, 2)} ms, ${f(r.rps, 0)} req/s, ${f(r.cpuUs, 0)} µs/req (load average ${os.loadavg()[0]!.toFixed(1)})`);
        }
      }
      for (const [i, s] of prepared.entries()) {
        rows.push({ what: s.what, users: s.users, ...medianOf(results[i]!), first50: s.first50, first99: s.first99, heapMB: s.heapMB, rssMB: s.rssMB });
      }
    } finally {
      await Promise.all(prepared.map((s) => s.stop()));
    }
  } finally {
    await database.drop();
  }
  if (js) rows.push(js);

  const header = ['', 'p50 ms', 'p90 ms', 'p99 ms', 'req/s', 'server CPU µs/req', 'first req p50/p99 ms', 'index heap MB', 'RSS MB', 'errors'];
  const lines = rows.map((r) => [
    r.what,
    f(r.p50, 2),
    f(r.p90, 2),
    f(r.p99, 2),
    f(r.rps, 0),
    f(r.cpuUs, 0),
    r.first50 === undefined ? '—' : `${f(r.first50, 2)} / ${f(r.first99, 2)}`,
    f(r.heapMB),
    f(r.rssMB, 0),
    String(r.errors),
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => (l[i] as string).length)));
  const fmt = (cells: string[]): string => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const load1 = os.loadavg().map((x) => x.toFixed(1)).join(' ');
  console.log(
    `\nGET /api/kernelspecs?user=<random user> with that user's token, ${connections} connections, ${duration} s each, ` +
      `spawngate: median of ${rounds} interleaved rounds, ` +
      `${os.cpus().length} CPUs, node ${process.version}, load average now ${load1}`,
  );
  console.log(fmt(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const l of lines) console.log(fmt(l));

  const sg = rows.filter((r) => r.users !== undefined);
  const at2k = sg.find((r) => r.users === 2000) ?? sg[0];
  const checks: Array<[string, boolean]> = [];
  if (js && at2k) checks.push([`p50 ≤ 1/10 of jupyter_server's (${f(at2k.p50, 2)} vs ${f(js.p50, 2)} ms)`, at2k.p50 <= js.p50 / 10]);
  for (const r of sg) checks.push([`p99 < 20 ms at ${r.users} users (${f(r.p99, 2)})`, r.p99 < 20]);
  if (sg.length > 1) {
    for (const k of ['p50', 'p99'] as const) {
      const v = sg.map((r) => r[k]);
      const lo = Math.min(...v);
      const hi = Math.max(...v);
      checks.push([`${k} flat from ${sg[0]!.users} to ${sg[sg.length - 1]!.users} users within 20% (${v.map((x) => f(x, 2)).join(' → ')})`, hi <= lo * 1.2]);
    }
  }
  for (const [what, ok] of checks) console.log(`${ok ? 'ok  ' : 'MISS'} ${what}`);
  if (!process.argv.includes('--keep')) fs.rmSync(base, { recursive: true, force: true });
  agent.destroy();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
