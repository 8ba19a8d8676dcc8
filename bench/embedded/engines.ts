/**
 * The embedded default's cost, beside external Postgres and PGlite, in one run:
 *  - `spawngate serve` (built CLI) start-up to /readyz 200 on a warm data directory (second start),
 *  - idle resident memory of spawngate plus its embedded database (all processes of the tree, after 5 s
 *    idle), for the embedded engine and for external Postgres (the external server not counted),
 *  - throughput: token mint + verify pairs through the repository functions, 16 at a time,
 *  - PGlite alone: RSS right after PGlite.create on disk, and the same throughput.
 *
 *   npm run build && npx tsx bench/embedded/engines.ts [--pairs 2000] [--database-url postgres://…]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createPgliteDb, createPostgresDb, migrate, mintToken, openEmbeddedDb, verifyToken, type Db } from '../../src/db';

const arg = (name: string, dflt: string): string => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1]! : dflt);
const PAIRS = Number(arg('--pairs', '2000'));
const ADMIN_URL = arg('--database-url', 'postgres://root@127.0.0.1:5432/test');
const CLI = path.resolve(__dirname, '..', '..', 'bin', 'spawngate.js');

function rssTreeMiB(root: number): number {
  const parents = new Map<number, number>();
  for (const e of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${e}/stat`, 'utf8');
      parents.set(Number(e), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      /* gone */
    }
  }
  const tree = [root];
  for (let i = 0; i < tree.length; i++) for (const [pid, ppid] of parents) if (ppid === tree[i]) tree.push(pid);
  let kib = 0;
  for (const pid of tree) {
    try {
      kib += Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      /* gone */
    }
  }
  return kib / 1024;
}

async function serveOnce(env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; readyMs: number; url: string }> {
  const t0 = performance.now();
  const child = spawn(process.execPath, [CLI, 'serve'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      log += d.toString();
      const m = /"url":"(http:\/\/[^"]+)"/.exec(log);
      if (m) resolve(m[1]!);
    });
    child.once('exit', (c) => reject(new Error(`serve exited ${c}: ${log}`)));
  });
  while ((await fetch(`${url}/readyz`).then((r) => r.status).catch(() => 0)) !== 200) await new Promise((r) => setTimeout(r, 20));
  return { child, readyMs: performance.now() - t0, url };
}

async function stop(child: ChildProcess): Promise<void> {
  const gone = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  await gone;
}

async function serveFigures(env: NodeJS.ProcessEnv): Promise<{ warmStartMs: number; idleMiB: number }> {
  await stop((await serveOnce(env)).child); // cold: creates the data directory / schema
  const warm = await serveOnce(env);
  await new Promise((r) => setTimeout(r, 5000));
  const idleMiB = rssTreeMiB(warm.child.pid!);
  await stop(warm.child);
  return { warmStartMs: warm.readyMs, idleMiB };
}

async function throughput(db: Db): Promise<number> {
  await migrate(db);
  await db.query("INSERT INTO users (username) VALUES ('bench') ON CONFLICT DO NOTHING");
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 16 }, async () => {
      while (next++ < PAIRS) {
        const t = await mintToken(db, { username: 'bench', kind: 'cli' });
        if (!(await verifyToken(db, t))) throw new Error('minted token does not verify');
      }
    }),
  );
  return PAIRS / ((performance.now() - t0) / 1000);
}

async function main(): Promise<void> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-bench-'));
  const base = { PATH: process.env.PATH, HOME: process.env.HOME, SPAWNGATE_PORT: '0', SPAWNGATE_BIND: '127.0.0.1', SPAWNGATE_HUB_TOKEN: 'bench-hub-token-0123456789' };
  const dbName = `spawngate_bench_${process.pid}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${dbName}`);
  const extUrl = Object.assign(new URL(ADMIN_URL), { pathname: `/${dbName}` }).toString();
  try {
    const embeddedServe = await serveFigures({ ...base, SPAWNGATE_DATA_DIR: path.join(root, 'emb') });
    const externalServe = await serveFigures({ ...base, SPAWNGATE_DATA_DIR: path.join(root, 'ext'), SPAWNGATE_DATABASE_URL: extUrl });

    const emb = await openEmbeddedDb({ dataDir: path.join(root, 'emb-tp'), max: 16 });
    const embTp = await throughput(emb).finally(() => emb.close());
    const ext = createPostgresDb({ url: extUrl, max: 16 });
    const extTp = await throughput(ext).finally(() => ext.close());
    const before = process.memoryUsage().rss;
    const lite = await createPgliteDb({ dataDir: path.join(root, 'lite') });
    const liteMiB = (process.memoryUsage().rss - before) / 2 ** 20;
    const liteTp = await throughput(lite).finally(() => lite.close());

    const row = (k: string, a: string, b: string, c: string): string => `${k.padEnd(44)}${a.padStart(12)}${b.padStart(12)}${c.padStart(12)}`;
    console.log(row('', 'embedded', 'external', 'PGlite'));
    console.log(row('serve start-up to /readyz 200, warm dir (ms)', embeddedServe.warmStartMs.toFixed(0), externalServe.warmStartMs.toFixed(0), '-'));
    console.log(row('serve idle RSS incl. embedded db (MiB)', embeddedServe.idleMiB.toFixed(0), `${externalServe.idleMiB.toFixed(0)}+srv`, '-'));
    console.log(row('PGlite.create alone, RSS growth (MiB)', '-', '-', liteMiB.toFixed(0)));
    console.log(row(`token mint+verify pairs/s (16 concurrent)`, embTp.toFixed(0), extTp.toFixed(0), liteTp.toFixed(0)));
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    await admin.end();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

void main().catch((err) => {
  console.error(err);
  process.exit(1);
});
