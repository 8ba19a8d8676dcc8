/**
 * Figures for the three images: build time (as the machine's caches stand, then warm, then warm after
 * a source change), image sizes, and the cold start of the spawngate container to /readyz beside the
 * same service started as a plain process, on the machine's Postgres and Redis.
 *
 *   npx tsx bench/images/images.ts [--starts 5] [--cold | --no-build] [--database-url postgres://…]
 *
 * --cold rebuilds the local bases and every layer (`--no-cache`; the downloaded Debian and npm
 * packages stay cached, as they would on any builder). Uses podman with the shared service's
 * containers.conf (runc) and the machine's CA bundle for npm (scripts/build-images.sh --ca-file).
 * --no-build measures sizes and start times of the images an earlier run built.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

const REPO = path.resolve(__dirname, '../..');
const REGISTRY = 'localhost/spawngate-images-bench';
const CA = '/etc/ssl/certs/ca-certificates.crt';
const arg = (name: string, dflt: string) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1]! : dflt);
const starts = Number(arg('--starts', '5'));
const adminUrl = arg('--database-url', 'postgres://root@127.0.0.1:5432/test');
const VERSION = (JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const cold = process.argv.includes('--cold');
const noBuild = process.argv.includes('--no-build');

const conf = path.join(os.tmpdir(), 'spawngate-images-containers.conf');
const shared = fs.readFileSync('/tmp/spawngate-podman/containers.conf', 'utf8');
fs.writeFileSync(conf, shared.replace(/^\[engine\]$/m, '[engine]\nruntime = "runc"'));
const env = { ...process.env, CONTAINERS_CONF: conf };
const podman = (...args: string[]) => execFileSync('podman', args, { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

function build(repo: string, extra: string[] = []): { seconds: number; refs: Record<string, string> } {
  const t = process.hrtime.bigint();
  const ca = fs.existsSync(CA) ? ['--ca-file', CA] : [];
  const r = spawnSync('bash', [path.join(repo, 'scripts/build-images.sh'), '--engine', 'podman', '--local-base', '--registry', REGISTRY, ...ca, ...extra], { env, encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`build failed:\n${r.stderr.slice(-4000)}`);
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  return { seconds, refs: Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split(' ') as [string, string])) };
}

/** A copy of what the images are built from, with one source file changed (a comment). */
function changedCopy(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-bench-src-'));
  for (const p of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'scripts', 'src', 'bin', 'docker', 'python-shim']) {
    fs.cpSync(path.join(REPO, p), path.join(dir, p), { recursive: true, filter: (s) => !/node_modules|__pycache__|\.egg-info/.test(s) });
  }
  fs.appendFileSync(path.join(dir, 'src/cli/main.ts'), `\n// bench ${Date.now()}\n`);
  return dir;
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });

async function untilReady(url: string, timeoutMs = 120_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const ok = await fetch(url).then((r) => r.status === 200, () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${url} not ready in ${timeoutMs} ms`);
}

async function withDatabase<T>(fn: (url: string) => Promise<T>): Promise<T> {
  const name = `spawngate_bench_${randomBytes(5).toString('hex')}`;
  const admin = async (sql: string) => {
    const c = new pg.Client({ connectionString: adminUrl });
    await c.connect();
    await c.query(sql).finally(() => c.end());
  };
  await admin(`CREATE DATABASE ${name}`);
  const u = new URL(adminUrl);
  u.pathname = `/${name}`;
  try {
    return await fn(u.toString());
  } finally {
    await admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  }
}

function serviceEnv(port: number, db: string): Record<string, string> {
  return {
    SPAWNGATE_PORT: String(port),
    SPAWNGATE_BIND: '127.0.0.1',
    SPAWNGATE_DATABASE_URL: db,
    SPAWNGATE_REDIS_URL: 'redis://127.0.0.1:6379',
    SPAWNGATE_QUEUE_PREFIX: `sg-bench-img-${port}`,
    SPAWNGATE_HUB_TOKEN: randomBytes(16).toString('hex'),
    SPAWNGATE_SECRET_KEY: randomBytes(32).toString('base64'),
    SPAWNGATE_LOG_LEVEL: 'warn',
  };
}

async function containerStart(image: string, db: string): Promise<number> {
  const port = await freePort();
  const name = `sg-bench-img-${port}`;
  const e = Object.entries(serviceEnv(port, db)).flatMap(([k, v]) => ['--env', `${k}=${v}`]);
  const t = Date.now();
  podman('run', '-d', '--name', name, '--network', 'host', '--read-only', '--tmpfs', '/var/lib/spawngate:rw,U,mode=0700', '--cap-drop', 'ALL', ...e, image);
  try {
    await untilReady(`http://127.0.0.1:${port}/readyz`);
    return (Date.now() - t) / 1000;
  } finally {
    podman('rm', '--force', '--time', '5', name);
  }
}

async function processStart(db: string): Promise<number> {
  const port = await freePort();
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-bench-img-data-'));
  const t = Date.now();
  const child = spawn(process.execPath, [path.join(REPO, 'bin/spawngate.js'), 'serve'], { env: { PATH: process.env.PATH, HOME: data, SPAWNGATE_DATA_DIR: data, ...serviceEnv(port, db) }, stdio: 'ignore' });
  try {
    await untilReady(`http://127.0.0.1:${port}/readyz`);
    return (Date.now() - t) / 1000;
  } finally {
    const exited = new Promise((r) => child.on('exit', r));
    child.kill('SIGTERM');
    await exited;
    fs.rmSync(data, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (xs: number[]) => `median ${median(xs).toFixed(2)} s (runs: ${xs.map((x) => x.toFixed(2)).join(', ')})`;

async function main(): Promise<void> {
  console.log(`machine: ${os.cpus().length} cores, load ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  let refs: Record<string, string> = { spawngate: `${REGISTRY}/spawngate:${VERSION}`, kernel: `${REGISTRY}/spawngate-kernel:${VERSION}`, hub: '' };
  if (!noBuild) {
    const first = build(REPO, cold ? ['--no-cache'] : []);
    console.log(`build, ${cold ? 'cold (--no-cache, bases rebuilt)' : 'first run (caches as found)'}: ${first.seconds.toFixed(1)} s`);
    const warm = build(REPO);
    console.log(`build, warm (nothing changed):                ${warm.seconds.toFixed(1)} s`);
    const copy = changedCopy();
    try {
      const changed = build(copy);
      console.log(`build, warm after a change in src/:           ${changed.seconds.toFixed(1)} s`);
    } finally {
      fs.rmSync(copy, { recursive: true, force: true });
    }
    // the copy's build moved the bench tags to its images: put back the checkout's
    build(REPO);
    refs = warm.refs;
  }
  console.log('\nimage sizes:');
  const bases = (podman('images', '--format', '{{.Repository}}:{{.Tag}}', '--filter', 'reference=localhost/spawngate-base/*')).trim().split('\n');
  const hub = refs.hub || podman('images', '--format', '{{.Repository}}:{{.Tag}}', '--filter', `reference=${REGISTRY}/spawngate-hub`).trim().split('\n')[0]!;
  for (const ref of [refs.spawngate!, refs.kernel!, hub, ...bases]) {
    const [info] = JSON.parse(podman('image', 'inspect', ref)) as { Size: number }[];
    console.log(`  ${ref.padEnd(70)} ${(info!.Size / 1e6).toFixed(1).padStart(7)} MB`);
  }

  console.log(`\ncold start to /readyz (${starts} each; Postgres + Redis on this machine; a fresh database per run, migrated on start):`);
  const inContainer: number[] = [];
  const asProcess: number[] = [];
  for (let i = 0; i < starts; i++) {
    inContainer.push(await withDatabase((db) => containerStart(refs.spawngate!, db)));
    asProcess.push(await withDatabase((db) => processStart(db)));
  }
  console.log(`  spawngate container (podman run → 200): ${fmt(inContainer)}`);
  console.log(`  same build as a host process (peer):    ${fmt(asProcess)}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
