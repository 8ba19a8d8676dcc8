/**
 * Issue 4, benchmark 1: kernel start latency, `POST /api/kernels` → first output of a cell
 * (`print(1)` over the kernel websocket, until its `stream` message arrives), same run, same machine,
 * interleaved (the order alternates each round):
 *   a. spawngate in-process (embedded PGlite, local backend), kernelspec `conda-env-tf-python3` of a
 *      fixture home running Debian's `/usr/bin/python3 -m ipykernel_launcher`, quota from SQL;
 *   b. Debian's jupyter_server 1.23 (`/usr/bin/python3 -m jupyter_server`) starting its local
 *      `python3` kernel (same argv), no gateway.
 * Each kernel is shut down (DELETE, awaited) after it is measured. Servers are started before timing.
 *
 *   npx tsx bench/kernels/start-latency.ts    (env N=20 rounds, WARMUP=2 rounds not counted,
 *                                             BENCH_SAMPLES=1 lists every sample: total(POST))
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import type WebSocket from 'ws';
import { freePorts } from '../../tests/channels/helpers';
import { connectWs } from '../../tests/support/jupyter-ws';
import {
  firstOutput,
  KERNEL_NAME,
  percentile,
  sleep,
  startSpawngate,
  SYSTEM_PYTHON,
  type Spawngate,
} from './common';

const N = Number(process.env.N ?? 20);
const WARMUP = Number(process.env.WARMUP ?? 2);
const TARGET = 1.15;
/** A cell whose output has not arrived after this long counts as a failed start (output lost). */
const OUTPUT_TIMEOUT_MS = Number(process.env.OUTPUT_TIMEOUT_MS ?? 10_000);

interface Sample {
  /** POST /api/kernels → 201. */
  post: number;
  /** 201 → websocket open. */
  ws: number;
  /** execute_request sent → first stream message. */
  exec: number;
  /** POST sent → first stream message. */
  total: number;
}

interface Target {
  name: string;
  samples: Sample[];
  /** Starts whose first output never arrived: message, per start. */
  failures: string[];
  once(): Promise<Sample>;
}

/** One measured start: POST, open the channels websocket, print(1), then DELETE (not timed). */
async function measure(opts: {
  base: string;
  headers: Record<string, string>;
  body: unknown;
  wsUrl: (id: string) => string;
}): Promise<Sample> {
  const t0 = performance.now();
  const res = await fetch(`${opts.base}/api/kernels`, {
    method: 'POST',
    headers: { ...opts.headers, 'Content-Type': 'application/json' },
    body: JSON.stringify(opts.body),
  });
  const text = await res.text();
  if (res.status !== 201) throw new Error(`POST ${opts.base}/api/kernels: ${res.status} ${text}`);
  const { id } = JSON.parse(text) as { id: string };
  const t1 = performance.now();
  let ws: WebSocket | undefined;
  try {
    ws = await connectWs(opts.wsUrl(id), opts.headers);
    const t2 = performance.now();
    const out = await firstOutput(ws, 'print(1)', OUTPUT_TIMEOUT_MS);
    const t3 = performance.now();
    if (out.trim() !== '1') throw new Error(`print(1) printed ${JSON.stringify(out)}`);
    return { post: t1 - t0, ws: t2 - t1, exec: t3 - t2, total: t3 - t0 };
  } finally {
    ws?.close();
    await shutdown(opts.base, id, opts.headers);
  }
}

async function shutdown(base: string, id: string, headers: Record<string, string>): Promise<void> {
  const del = await fetch(`${base}/api/kernels/${id}`, { method: 'DELETE', headers });
  if (del.status !== 204) throw new Error(`DELETE kernel ${id}: ${del.status} ${await del.text()}`);
}

async function spawngateTarget(sg: Spawngate): Promise<Target> {
  const token = sg.tokens.get('alice')!;
  const headers = { Authorization: `token ${token}` };
  return {
    name: 'spawngate (local backend)',
    samples: [],
    failures: [],
    once: () =>
      measure({
        base: sg.base,
        headers,
        body: { name: KERNEL_NAME },
        wsUrl: (id) =>
          `ws://127.0.0.1:${sg.port}/api/kernels/${id}/channels?session_id=${randomBytes(8).toString('hex')}`,
      }),
  };
}

async function jupyterServerTarget(tmp: string, cleanups: (() => Promise<void>)[]): Promise<Target> {
  const [port] = (await freePorts(1)) as [number];
  const token = randomBytes(16).toString('hex');
  const dir = fs.mkdtempSync(path.join(tmp, 'js-'));
  const proc = spawn(
    SYSTEM_PYTHON,
    [
      '-m',
      'jupyter_server',
      '--allow-root',
      '--no-browser',
      `--port=${port}`,
      `--ServerApp.token=${token}`,
      '--ServerApp.ip=127.0.0.1',
      '--ServerApp.port_retries=0',
      `--ServerApp.root_dir=${dir}`,
    ],
    {
      stdio: ['ignore', 'ignore', process.env.BENCH_VERBOSE ? 'inherit' : 'ignore'],
      env: {
        PATH: '/usr/bin:/bin',
        HOME: dir,
        JUPYTER_CONFIG_DIR: path.join(dir, 'config'),
        JUPYTER_DATA_DIR: path.join(dir, 'data'),
        JUPYTER_RUNTIME_DIR: path.join(dir, 'runtime'),
        IPYTHONDIR: path.join(dir, 'ipython'),
        JUPYTER_PLATFORM_DIRS: '1',
      },
    },
  );
  cleanups.push(async () => {
    if (proc.exitCode !== null) return;
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
  });
  const base = `http://127.0.0.1:${port}`;
  const headers = { Authorization: `token ${token}` };
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${base}/api/status`, { headers })).ok) break;
    } catch {
      // not listening yet
    }
    if (proc.exitCode !== null || i > 300)
      throw new Error('jupyter_server did not start (BENCH_VERBOSE=1 shows its output)');
    await sleep(100);
  }
  return {
    name: 'jupyter_server 1.23 (local kernel)',
    samples: [],
    failures: [],
    once: () =>
      measure({
        base,
        headers,
        body: { name: 'python3' },
        // The browser's way: the token in the query string, no header.
        wsUrl: (id) =>
          `ws://127.0.0.1:${port}/api/kernels/${id}/channels?token=${token}&session_id=${randomBytes(8).toString('hex')}`,
      }),
  };
}

function stats(xs: number[]): { p50: number; p90: number; mean: number } {
  const s = [...xs].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p90: percentile(s, 90), mean: s.reduce((a, b) => a + b, 0) / s.length };
}

async function main(): Promise<void> {
  const cleanups: (() => Promise<void>)[] = [];
  const sg = await startSpawngate({ users: ['alice'] });
  cleanups.push(() => sg.close());
  try {
    const targets = [await spawngateTarget(sg), await jupyterServerTarget(sg.root, cleanups)];
    for (let round = 0; round < WARMUP + N; round++) {
      const order = round % 2 === 0 ? targets : [...targets].reverse();
      for (const t of order) {
        try {
          const s = await t.once();
          if (round >= WARMUP) t.samples.push(s);
        } catch (err) {
          // A start that never shows output is a failed start, not a slow one: counted, not timed.
          if (!/^no output of/.test((err as Error).message)) throw err;
          if (round >= WARMUP) t.failures.push((err as Error).message);
          process.stderr.write(`\n${t.name}: ${(err as Error).message}\n`);
        }
      }
      process.stderr.write(`\rround ${round + 1}/${WARMUP + N}${round < WARMUP ? ' (warm-up)' : ''}   `);
    }
    process.stderr.write('\n');

    const w = Math.max(...targets.map((t) => t.name.length));
    const f = (ms: number): string => (ms / 1000).toFixed(3).padStart(7);
    console.log(
      `\nKernel start latency, POST /api/kernels → first output of print(1), N=${N} each (interleaved, ${WARMUP} warm-up rounds dropped), seconds\n`,
    );
    console.log(
      `${'path'.padEnd(w)}  ${'ok'.padStart(3)} ${'lost'.padStart(4)}  ${'p50'.padStart(7)} ${'p90'.padStart(7)} ${'mean'.padStart(7)} │ median of: ${'POST'.padStart(6)} ${'ws'.padStart(6)} ${'exec'.padStart(6)}`,
    );
    const medians: number[] = [];
    for (const t of targets) {
      const total = stats(t.samples.map((s) => s.total));
      medians.push(total.p50);
      const part = (k: keyof Sample): string => f(stats(t.samples.map((s) => s[k])).p50).slice(1);
      console.log(
        `${t.name.padEnd(w)}  ${String(t.samples.length).padStart(3)} ${String(t.failures.length).padStart(4)}  ${f(total.p50)} ${f(total.p90)} ${f(total.mean)} │            ${part('post')} ${part('ws')} ${part('exec')}`,
      );
    }
    if (process.env.BENCH_SAMPLES) {
      for (const t of targets)
        console.log(
          `${t.name}: ${t.samples.map((s) => `${(s.total / 1000).toFixed(2)}(${(s.post / 1000).toFixed(2)})`).join(' ')}`,
        );
    }
    const ratio = medians[0]! / medians[1]!;
    console.log(
      `\nPOST = until 201; ws = 201 → websocket open; exec = execute_request → first stream message.`,
    );
    console.log(
      `lost = starts whose print(1) output never arrived within ${OUTPUT_TIMEOUT_MS / 1000} s (not timed; a target miss of its own).`,
    );
    const lost = targets.reduce((a, t) => a + t.failures.length, 0);
    if (lost)
      console.log(
        `every start showed its output: target MISSED (${targets.map((t) => `${t.name}: ${t.failures.length} lost`).join(', ')})`,
      );
    console.log(
      `\nratio of medians spawngate / jupyter_server = ${ratio.toFixed(3)} (target ≤ ${TARGET}): target ${ratio <= TARGET ? 'met' : 'MISSED'}`,
    );
  } finally {
    for (const c of cleanups.reverse()) await c().catch((err) => console.error('cleanup:', err));
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
