/**
 * Issue 4, benchmark 3: 100 kernels started concurrently through spawngate's HTTP API (in-process
 * service, embedded PGlite, local backend, Debian's ipykernel; 10 users, each a member of the
 * experiment; no per-user kernel limit; launch timeout 120 s). All must succeed. Then one websocket
 * is attached to each kernel (bridged, idle) and the service's memory per idle bridged kernel is
 * measured: this process's RSS and V8 heap after a full GC, before attaching and after attaching all
 * of them, divided by the number of kernels (target < 1 MB). The websocket *clients* run in a child
 * process (bench/kernels/ws-clients.ts) so their memory and descriptors are not counted. Open file
 * descriptors (/proc/self/fd) are reported per kernel too. Every kernel is shut down at the end.
 *
 *   node --expose-gc --import tsx bench/kernels/concurrent.ts     (env KERNELS=100, USERS=10)
 *   npx tsx bench/kernels/concurrent.ts                           (works too: GC is exposed at run time)
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import v8 from 'node:v8';
import vm from 'node:vm';
import { KERNEL_NAME, percentile, sleep, startSpawngate } from './common';

const KERNELS = Number(process.env.KERNELS ?? 100);
const USERS = Number(process.env.USERS ?? 10);
const SETTLE_MS = Number(process.env.SETTLE_MS ?? 6000);
const TARGET_BYTES = 1024 * 1024;

// `--expose-gc` on the command line, or the same flag set now (V8 then offers `gc` to new contexts).
const gc: () => void =
  (globalThis as { gc?: () => void }).gc ??
  (v8.setFlagsFromString('--expose-gc'), vm.runInNewContext('gc') as () => void);

interface Snapshot {
  rss: number;
  heapUsed: number;
  external: number;
  fds: number;
}

async function snapshot(): Promise<Snapshot> {
  // Several passes with pauses: finalizers (zeromq sockets, ws) run between them.
  for (let i = 0; i < 4; i++) {
    gc();
    await sleep(250);
  }
  const m = process.memoryUsage();
  return {
    rss: m.rss,
    heapUsed: m.heapUsed,
    external: m.external,
    fds: fs.readdirSync('/proc/self/fd').length,
  };
}

const MiB = (b: number): string => (b / 1024 / 1024).toFixed(1);
const KiB = (b: number): string => (b / 1024).toFixed(1);

async function main(): Promise<void> {
  const users = Array.from({ length: USERS }, (_, i) => `user${String(i).padStart(2, '0')}`);
  const sg = await startSpawngate({ users, yaml: 'kernels:\n  launch_timeout_seconds: 120\n' });
  const ids: { id: string; user: string }[] = [];
  let child: ReturnType<typeof spawn> | undefined;
  try {
    // Warm the service's code paths (one kernel, started and shut down) before the baseline.
    {
      const token = sg.tokens.get(users[0]!)!;
      const res = await fetch(`${sg.base}/api/kernels`, {
        method: 'POST',
        headers: { Authorization: `token ${token}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ name: KERNEL_NAME }),
      });
      if (res.status !== 201) throw new Error(`warm-up launch: ${res.status} ${await res.text()}`);
      const { id } = (await res.json()) as { id: string };
      await fetch(`${sg.base}/api/kernels/${id}`, {
        method: 'DELETE',
        headers: { Authorization: `token ${token}` },
      });
    }
    const idle = await snapshot();

    // 1. KERNELS launches at once.
    console.error(`starting ${KERNELS} kernels concurrently for ${USERS} users…`);
    const t0 = performance.now();
    const results = await Promise.all(
      Array.from({ length: KERNELS }, async (_, i) => {
        const user = users[i % USERS]!;
        const started = performance.now();
        try {
          const res = await fetch(`${sg.base}/api/kernels`, {
            method: 'POST',
            headers: { Authorization: `token ${sg.tokens.get(user)!}`, 'Content-Type': 'application/json' },
            body: JSON.stringify({ name: KERNEL_NAME }),
            signal: AbortSignal.timeout(300_000),
          });
          const body = await res.text();
          const ms = performance.now() - started;
          if (res.status !== 201) {
            // First line and the last line of the kernel's output (the exception), if any.
            const message = String((JSON.parse(body) as { message?: string }).message ?? body);
            const lines = message.split('\n').filter((l) => l.trim() !== '');
            return {
              ok: false as const,
              ms,
              error: `${res.status} ${lines[0]!.slice(0, 200)}${lines.length > 1 ? ` … ${lines[lines.length - 1]!.trim().slice(0, 200)}` : ''}`,
            };
          }
          const id = (JSON.parse(body) as { id: string }).id;
          ids.push({ id, user });
          return { ok: true as const, ms, id, user };
        } catch (err) {
          return { ok: false as const, ms: performance.now() - started, error: (err as Error).message };
        }
      }),
    );
    const wall = performance.now() - t0;
    const ok = results.filter((r) => r.ok);
    const failed = results.filter((r) => !r.ok);
    const lat = ok.map((r) => r.ms).sort((a, b) => a - b);
    const running = (await sg.service.kernels.list(undefined)).filter(
      (k) => k.execution_state !== 'dead',
    ).length;
    await sleep(SETTLE_MS);
    const launched = await snapshot();

    // 2. One websocket per kernel, from a child process.
    child = spawn(process.execPath, ['--import', 'tsx', path.join(__dirname, 'ws-clients.ts')], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const replies = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
    const ask = async <T>(cmd: unknown): Promise<T> => {
      child!.stdin!.write(`${JSON.stringify(cmd)}\n`);
      const next = await replies.next();
      if (next.done) throw new Error('websocket client process exited');
      return JSON.parse(next.value) as T;
    };
    const open = await ask<{ open: number; failed: string[] }>({
      open: ids.map(({ id, user }) => ({
        url: `ws://127.0.0.1:${sg.port}/api/kernels/${id}/channels?session_id=bench-${id}`,
        token: sg.tokens.get(user)!,
      })),
    });
    await sleep(SETTLE_MS); // activity flushes, heartbeats, ZMQ handshakes all done: the bridges are idle
    const attached = await snapshot();
    const bridges = sg.service.kernels.registry.size;
    // The bridges work (after the measurement, so the kernels were idle while measured).
    const exec = await ask<{ ok: number; failed: string[] }>({ exec: '1+1' });
    // Kernels the service now reports dead (e.g. its heartbeat got no answer) although they answer.
    const states = new Map<string, number>();
    for (const k of await sg.service.kernels.list(undefined))
      states.set(k.execution_state, (states.get(k.execution_state) ?? 0) + 1);
    const dead = states.get('dead') ?? 0;

    // Report.
    const n = ok.length;
    console.log(
      `\n${KERNELS} kernels started concurrently through POST /api/kernels (${USERS} users, worker concurrency ${sg.service.config.env.SPAWNGATE_WORKER_CONCURRENCY}, launch timeout 120 s)\n`,
    );
    console.log(
      `  succeeded            ${n} / ${KERNELS}   (failed ${failed.length}; running afterwards: ${running})`,
    );
    console.log(`  wall time            ${(wall / 1000).toFixed(1)} s`);
    if (lat.length)
      console.log(
        `  per-request latency  p50 ${(percentile(lat, 50) / 1000).toFixed(1)} s   p90 ${(percentile(lat, 90) / 1000).toFixed(1)} s   max ${(lat[lat.length - 1]! / 1000).toFixed(1)} s`,
      );
    for (const f of failed.slice(0, 10))
      console.log(`  failure after ${(f.ms / 1000).toFixed(1)} s: ${f.error}`);
    console.log(
      `\n  websockets attached  ${open.open} / ${n}   (bridge clients in the service: ${bridges})${open.failed.length ? `; failed: ${open.failed.slice(0, 3).join('; ')}` : ''}`,
    );
    console.log(
      `  1+1 on every bridge  ${exec.ok} / ${open.open} answered${exec.failed.length ? `; failed: ${exec.failed.slice(0, 3).join('; ')}` : ''}`,
    );
    console.log(
      `  states afterwards    ${[...states].map(([k, v]) => `${k} ${v}`).join(', ')}${dead ? '   (dead: the service stopped getting heartbeat answers)' : ''}`,
    );

    const rows: [string, Snapshot][] = [
      ['service idle, no kernels', idle],
      [`${n} kernels running, no websocket`, launched],
      [`${n} kernels, ${open.open} websockets (idle)`, attached],
    ];
    const w = Math.max(...rows.map((r) => r[0].length));
    console.log(
      `\n  service process after GC  ${''.padEnd(w - 24)}  RSS MiB  heapUsed MiB  external MiB   fds`,
    );
    for (const [label, s] of rows)
      console.log(
        `  ${label.padEnd(w)}  ${MiB(s.rss).padStart(7)}  ${MiB(s.heapUsed).padStart(12)}  ${MiB(s.external).padStart(12)}  ${String(s.fds).padStart(5)}`,
      );
    const per = (a: Snapshot, b: Snapshot, k: keyof Snapshot): number =>
      (b[k] - a[k]) / Math.max(1, open.open);
    console.log(
      `\n  per idle bridged kernel (attaching: ${n} kernels + websockets minus ${n} kernels without):`,
    );
    console.log(
      `    RSS ${KiB(per(launched, attached, 'rss'))} KiB   heapUsed ${KiB(per(launched, attached, 'heapUsed'))} KiB   external ${KiB(per(launched, attached, 'external'))} KiB   fds ${per(launched, attached, 'fds').toFixed(1)}`,
    );
    console.log(`  per kernel, all included (launch + bridge, versus the idle service):`);
    console.log(
      `    RSS ${KiB(per(idle, attached, 'rss'))} KiB   heapUsed ${KiB(per(idle, attached, 'heapUsed'))} KiB   external ${KiB(per(idle, attached, 'external'))} KiB   fds ${per(idle, attached, 'fds').toFixed(1)}`,
    );

    const allOk = n === KERNELS && open.open === n && exec.ok === n && dead === 0;
    const bridgeRss = per(launched, attached, 'rss');
    const allRss = per(idle, attached, 'rss');
    console.log(`\n  all ${KERNELS} started and bridged: target ${allOk ? 'met' : 'MISSED'}`);
    console.log(
      `  memory per idle bridged kernel < 1 MB (RSS, bridge only ${KiB(bridgeRss)} KiB; launch + bridge ${KiB(allRss)} KiB): target ${Math.max(bridgeRss, allRss) < TARGET_BYTES ? 'met' : 'MISSED'}`,
    );
  } finally {
    child?.stdin?.end(JSON.stringify({ close: true }) + '\n');
    console.error(`shutting down ${ids.length} kernels…`);
    const t1 = performance.now();
    const queue = [...ids];
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        for (let k = queue.shift(); k; k = queue.shift()) {
          const res = await fetch(`${sg.base}/api/kernels/${k.id}`, {
            method: 'DELETE',
            headers: { Authorization: `token ${sg.tokens.get(k.user)!}` },
          }).catch((err: Error) => err);
          if (res instanceof Error || res.status !== 204)
            console.error(`DELETE ${k.id}: ${res instanceof Error ? res.message : res.status}`);
        }
      }),
    );
    console.error(`shut down in ${((performance.now() - t1) / 1000).toFixed(1)} s`);
    await sg.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
