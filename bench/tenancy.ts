/**
 * Issue 11 figures, one run, `spawngate serve` as a child process on a fresh Postgres database:
 *  1. bob's kernel launch latency on an idle service, then while alice floods 60 launches of a kernel
 *     that never answers (KERNEL_LAUNCH_TIMEOUT=3600), with the default fair-share limits; and, for
 *     contrast, the same flood on a service whose per-user limits are lifted (launch timeout 15 s).
 *  2. the service's resident memory while one of alice's kernels is stopped (SIGSTOP) and receives
 *     300 MB of websocket frames (60 × 5 MB) — before, peak, and after the kernel reads again.
 *
 *   npx tsx bench/tenancy.ts [--samples 5]
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createTestPostgres, type TestPostgres } from '../tests/db/helpers';
import { ROOT, startSpawngate, tmpDir, type Spawngate } from '../tests/e2e/harness';
import { connectWs, execute } from '../tests/support/jupyter-ws';

const samples = Number(process.argv[process.argv.indexOf('--samples') + 1]) || 5;
const PYTHON = '/usr/bin/python3';
const MB = 1_000_000;

function homesWithKernels(): string {
  const homes = tmpDir('sg-bench-ten-homes');
  const spec = (user: string, name: string, argv: string[]): void => {
    const dir = path.join(homes, user, '.local', 'share', 'jupyter', 'kernels', name);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'kernel.json'), JSON.stringify({ argv, display_name: name, language: 'python' }));
  };
  for (const user of ['alice', 'bob']) spec(user, 'python3', [PYTHON, '-m', 'ipykernel_launcher', '-f', '{connection_file}']);
  spec('alice', 'sleeper', ['/bin/sleep', '3600']);
  return homes;
}

interface Run {
  sg: Spawngate;
  pg: TestPostgres;
  tokens: Record<string, string>;
}

async function start(kernelsYaml: string): Promise<Run> {
  const pg = await createTestPostgres();
  const dir = tmpDir('sg-bench-ten');
  const config = path.join(dir, 'config.yaml');
  fs.writeFileSync(config, `profiles:\n  - slug: small\n    display_name: Small\nkernels:\n  unregistered_environments: { profile: small }\n${kernelsYaml}`);
  const sg = await startSpawngate({ env: { SPAWNGATE_DATABASE_URL: pg.url, SPAWNGATE_HOME_ROOT: homesWithKernels(), SPAWNGATE_CONFIG: config, SPAWNGATE_LOG_LEVEL: 'warn' } });
  await pg.db.query("INSERT INTO users (username) VALUES ('alice'), ('bob')");
  const tokens: Record<string, string> = {};
  for (const user of ['alice', 'bob']) {
    tokens[user] = execFileSync(process.execPath, [path.join(ROOT, 'bin', 'spawngate.js'), 'token', '--user', user], { env: sg.env }).toString().trim();
  }
  return { sg, pg, tokens };
}

async function stop(run: Run): Promise<void> {
  await run.sg.stop();
  await run.pg.drop();
}

function launch(run: Run, user: string, name: string, env: Record<string, string> = {}): Promise<{ status: number; body: { id?: string; message?: string } }> {
  return fetch(`${run.sg.url}/api/kernels`, {
    method: 'POST',
    headers: { Authorization: `token ${run.tokens[user]}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ name, env }),
  }).then(async (r) => ({ status: r.status, body: (await r.json()) as { id?: string; message?: string } }));
}

async function shutdown(run: Run, user: string, id: string): Promise<void> {
  await fetch(`${run.sg.url}/api/kernels/${id}`, { method: 'DELETE', headers: { Authorization: `token ${run.tokens[user]}` } });
}

/** Seconds for one launch of bob's python3 kernel (then shut down). */
async function bobLaunch(run: Run): Promise<number> {
  const t0 = performance.now();
  const res = await launch(run, 'bob', 'python3');
  const s = (performance.now() - t0) / 1000;
  if (res.status !== 201) throw new Error(`bob's launch failed: ${res.status} ${res.body.message}`);
  await shutdown(run, 'bob', res.body.id!);
  return s;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (xs: number[]): string => `median ${median(xs).toFixed(2)} s (${xs.map((x) => x.toFixed(2)).join(', ')})`;

async function latency(run: Run, label: string): Promise<void> {
  const idle: number[] = [];
  for (let i = 0; i < samples; i++) idle.push(await bobLaunch(run));
  const settled = new Map<number, number>();
  const flood = Array.from({ length: 60 }, () =>
    launch(run, 'alice', 'sleeper', { KERNEL_LAUNCH_TIMEOUT: '3600' }).then((o) => settled.set(o.status, (settled.get(o.status) ?? 0) + 1)),
  );
  await new Promise((r) => setTimeout(r, 1000)); // the flood is admitted (or refused) and holds its slots
  const busy: number[] = [];
  for (let i = 0; i < samples; i++) busy.push(await bobLaunch(run));
  const answered = [...settled].map(([s, n]) => `${n}× ${s}`).join(', ') || 'none';
  // The admitted ones would wait out their launch timeout: shut them down.
  const list = (await (await fetch(`${run.sg.url}/api/kernels`, { headers: { Authorization: `token ${run.tokens.alice}` } })).json()) as { id: string }[];
  await Promise.all(list.map((k) => shutdown(run, 'alice', k.id)));
  await Promise.all(flood);
  console.log(`${label}`);
  console.log(`  bob, idle service:          ${fmt(idle)}`);
  console.log(`  bob, alice flooding 60:     ${fmt(busy)}`);
  console.log(`  alice's 60 launches, answered while bob launched: ${answered}; ${list.length} still starting`);
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m![1]) / 1024;
}

async function memory(run: Run): Promise<void> {
  const res = await launch(run, 'alice', 'python3');
  if (res.status !== 201) throw new Error(`launch failed: ${res.body.message}`);
  const ws = await connectWs(`ws://127.0.0.1:${run.sg.port}/api/kernels/${res.body.id}/channels`, { Authorization: `token ${run.tokens.alice}` });
  const kernelPid = Number((await execute(ws, 'import os; print(os.getpid())')).stdout.trim());
  const pid = run.sg.child.pid!;
  await new Promise((r) => setTimeout(r, 500));
  const before = rssMiB(pid);
  process.kill(kernelPid, 'SIGSTOP');
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, rssMiB(pid))), 50);
  const payload = 'x'.repeat(5 * MB);
  for (let i = 0; i < 60; i++) {
    ws.send(JSON.stringify({ header: { msg_id: randomUUID(), msg_type: 'bench_filler', username: 'alice', session: 'bench', date: new Date().toISOString(), version: '5.3' }, parent_header: {}, metadata: {}, content: { data: payload }, channel: 'shell' }));
  }
  await new Promise((r) => setTimeout(r, 5000));
  const stalled = rssMiB(pid);
  const heldByClient = ws.bufferedAmount;
  process.kill(kernelPid, 'SIGCONT');
  const deadline = Date.now() + 120_000;
  while (ws.bufferedAmount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  const answered = (await execute(ws, 'print(42)', 120_000)).stdout.trim() === '42';
  clearInterval(sampler);
  const after = rssMiB(pid);
  console.log('stalled kernel receiving 300 MB of websocket frames (60 × 5 MB), spawngate RSS:');
  console.log(`  before ${before.toFixed(0)} MiB, stalled ${stalled.toFixed(0)} MiB, peak ${peak.toFixed(0)} MiB, after the kernel read it all ${after.toFixed(0)} MiB`);
  console.log(`  held at the client while stalled: ${(heldByClient / MB).toFixed(0)} MB; kernel answered afterwards: ${answered}`);
  ws.close();
  await shutdown(run, 'alice', res.body.id!);
}

async function main(): Promise<void> {
  const limited = await start('');
  try {
    await latency(limited, 'default limits (kernels.max_launches_in_flight_per_user 5, 50 worker slots):');
    await memory(limited);
  } finally {
    await stop(limited);
  }
  const lifted = await start('  max_launches_in_flight_per_user: 100\n  max_kernels_per_user: 100\n  max_launch_timeout_seconds: 15\n');
  try {
    await latency(lifted, 'per-user limits lifted, for contrast (launch timeout capped at 15 s):');
  } finally {
    await stop(lifted);
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
