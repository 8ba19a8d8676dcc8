/**
 * Issue 4, benchmark 2: sequential `execute_request('1+1')` round trips (send → execute_reply AND
 * iopub status idle), same run, same machine, through
 *   1. spawngate's channels bridge over a real websocket (bridge in its own Node process),
 *   2. jupyter_client's BlockingKernelClient talking ZMQ directly (Debian's /usr/bin/python3),
 *   3. Debian's jupyter_server 1.23 own websocket on a local kernel,
 *   4. (diagnosis) the same jupyter_server with TCP_NODELAY turned on for its kernel websocket.
 * Each mode has its own fresh ipykernel; modes are interleaved in chunks so that load from other
 * processes on the machine hits them alike.
 *
 * run: npx tsx bench/channels/roundtrip.ts            (N=1000 round trips per mode; env N, CHUNK)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { WebSocket } from 'ws';
import { executeRequest } from '../../tests/support/jupyter-ws';
import { freePorts, startKernel, SYSTEM_PYTHON, type KernelProcess } from '../../tests/channels/helpers';

const N = Number(process.env.N ?? 1000);
const CHUNK = Number(process.env.CHUNK ?? 100);
const WARMUP = 20;

interface Mode {
  name: string;
  run(n: number): Promise<number[]>;
  samples: number[];
}

const cleanups: (() => Promise<void> | void)[] = [];
const tmp = mkdtempSync(join(tmpdir(), 'spawngate-bench-'));
cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));

function lines(proc: ChildProcess): AsyncIterator<string> {
  return createInterface({ input: proc.stdout! })[Symbol.asyncIterator]();
}

async function firstJsonLine(it: AsyncIterator<string>, what: string): Promise<Record<string, unknown>> {
  const next = await it.next();
  if (next.done) throw new Error(`${what} exited before it was ready`);
  return JSON.parse(next.value) as Record<string, unknown>;
}

/** A websocket Jupyter client timing execute round trips (legacy JSON protocol, as the browser). */
async function wsRoundTripper(
  url: string,
  headers: Record<string, string> = {},
): Promise<(n: number) => Promise<number[]>> {
  const session = randomUUID();
  const ws = new WebSocket(`${url}${url.includes('?') ? '&' : '?'}session_id=${session}`, {
    perMessageDeflate: false,
    headers,
  });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  (ws as unknown as { _socket: import('node:net').Socket })._socket.setNoDelay(true);
  cleanups.push(() => ws.terminate());
  let current: { msgId: string; reply: boolean; idle: boolean; done: () => void } | undefined;
  ws.on('message', (data: Buffer) => {
    const msg = JSON.parse(data.toString('utf8'));
    if (!current || msg.parent_header?.msg_id !== current.msgId) return;
    if (msg.channel === 'shell' && msg.header.msg_type === 'execute_reply') current.reply = true;
    if (msg.channel === 'iopub' && msg.header.msg_type === 'status' && msg.content.execution_state === 'idle')
      current.idle = true;
    if (current.reply && current.idle) current.done();
  });
  const once = (): Promise<number> =>
    new Promise((resolve) => {
      const msgId = randomUUID();
      const t0 = performance.now();
      current = { msgId, reply: false, idle: false, done: () => resolve(performance.now() - t0) };
      ws.send(executeRequest('1+1', { msgId, session, username: 'bench' }));
    });
  return async (n) => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) out.push(await once());
    return out;
  };
}

async function kernelWithConnectionFile(): Promise<{ kernel: KernelProcess; file: string }> {
  const kernel = await startKernel();
  cleanups.push(() => kernel.kill());
  const file = join(tmp, `conn-${kernel.pid}.json`);
  writeFileSync(file, JSON.stringify(kernel.info), { mode: 0o600 });
  return { kernel, file };
}

async function spawngateMode(): Promise<Mode> {
  const { file } = await kernelWithConnectionFile();
  const proc = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'bridge-server.ts'), file], {
    stdio: ['pipe', 'pipe', 'inherit'],
    env: { ...process.env, SPAWNGATE_LOG_LEVEL: 'warn' },
  });
  cleanups.push(() => void proc.stdin!.end());
  const { url } = (await firstJsonLine(lines(proc), 'bridge server')) as { url: string };
  const run = await wsRoundTripper(url);
  return { name: 'spawngate bridge (websocket)', run, samples: [] };
}

async function directMode(): Promise<Mode> {
  const { file } = await kernelWithConnectionFile();
  const proc = spawn(SYSTEM_PYTHON, [join(__dirname, 'direct_zmq.py'), file], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  cleanups.push(() => void proc.stdin!.end());
  const it = lines(proc);
  await firstJsonLine(it, 'direct_zmq.py');
  const run = async (n: number): Promise<number[]> => {
    proc.stdin!.write(`${n}\n`);
    return ((await firstJsonLine(it, 'direct_zmq.py')) as { samples_ms: number[] }).samples_ms;
  };
  return { name: 'jupyter_client → ZMQ directly', run, samples: [] };
}

async function jupyterServerMode(name: string, nodelay: boolean): Promise<Mode> {
  const [port] = (await freePorts(1)) as [number];
  const token = randomBytes(16).toString('hex');
  const dir = mkdtempSync(join(tmp, 'js-'));
  const args = [
    '--allow-root',
    '--no-browser',
    `--ServerApp.token=${token}`,
    `--port=${port}`,
    '--ServerApp.ip=127.0.0.1',
    '--ServerApp.port_retries=0',
    `--ServerApp.root_dir=${dir}`,
  ];
  const argv = nodelay
    ? [join(__dirname, 'jupyter_server_nodelay.py'), ...args]
    : ['-m', 'jupyter_server', ...args];
  const proc = spawn(SYSTEM_PYTHON, argv, {
    stdio: ['ignore', 'ignore', process.env.BENCH_VERBOSE ? 'inherit' : 'ignore'],
    env: {
      PATH: '/usr/bin:/bin',
      HOME: dir,
      JUPYTER_CONFIG_DIR: join(dir, 'config'),
      JUPYTER_DATA_DIR: join(dir, 'data'),
      JUPYTER_RUNTIME_DIR: join(dir, 'runtime'),
      IPYTHONDIR: join(dir, 'ipython'),
      JUPYTER_PLATFORM_DIRS: '1',
    },
  });
  cleanups.push(async () => {
    proc.kill('SIGTERM');
    await new Promise((r) => (proc.exitCode !== null ? r(null) : proc.once('exit', r)));
  });
  const base = `http://127.0.0.1:${port}`;
  const headers = { Authorization: `token ${token}` };
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${base}/api`, { headers })).ok) break;
    } catch {
      // not listening yet
    }
    if (i > 300) throw new Error('jupyter_server did not start');
    await new Promise((r) => setTimeout(r, 100));
  }
  const res = await fetch(`${base}/api/kernels`, {
    method: 'POST',
    headers,
    body: JSON.stringify({ name: 'python3' }),
  });
  if (res.status !== 201) throw new Error(`POST /api/kernels: ${res.status} ${await res.text()}`);
  const { id } = (await res.json()) as { id: string };
  const run = await wsRoundTripper(`ws://127.0.0.1:${port}/api/kernels/${id}/channels`, headers);
  return { name, run, samples: [] };
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

async function main(): Promise<void> {
  const modes = await Promise.all([
    spawngateMode(),
    directMode(),
    jupyterServerMode('jupyter_server 1.23 websocket', false),
    jupyterServerMode('  same, TCP_NODELAY on (diagnosis)', true),
  ]);
  for (const m of modes) await m.run(WARMUP);
  for (let done = 0; done < N; done += CHUNK) {
    const n = Math.min(CHUNK, N - done);
    for (const m of modes) m.samples.push(...(await m.run(n)));
  }
  const rows = modes.map((m) => {
    const s = [...m.samples].sort((a, b) => a - b);
    return {
      name: m.name,
      n: s.length,
      p50: percentile(s, 50),
      p99: percentile(s, 99),
      mean: s.reduce((a, b) => a + b, 0) / s.length,
    };
  });
  const w = Math.max(...rows.map((r) => r.name.length));
  console.log(`\n${N} sequential execute_request('1+1') round trips (reply + iopub idle), ms\n`);
  console.log(`${'path'.padEnd(w)}      n     p50     p99    mean`);
  for (const r of rows) {
    console.log(
      `${r.name.padEnd(w)} ${String(r.n).padStart(6)} ${r.p50.toFixed(2).padStart(7)} ${r.p99.toFixed(2).padStart(7)} ${r.mean.toFixed(2).padStart(7)}`,
    );
  }
  const [bridge, direct] = rows as [(typeof rows)[0], (typeof rows)[0]];
  console.log(
    `\nspawngate p50 / jupyter_client p50 = ${(bridge.p50 / direct.p50).toFixed(2)} (target ≤ 1.5)`,
  );
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(async () => {
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch {
        // best effort
      }
    }
  });
