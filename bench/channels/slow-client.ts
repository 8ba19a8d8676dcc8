/**
 * Issue 11: what a websocket client that never reads costs spawngate. An in-process spawngate (local
 * backend, real Postgres, real ipykernel) bridges a kernel that prints MIB × 1 MiB to a reading client
 * (its own Node process, so its parsing is not counted) while a second client of the same kernel has
 * stopped reading (its socket paused). Side by side in one run:
 *   - no stalled client (the baseline);
 *   - a stalled client with the default budget (kernels.channel_buffer_bytes 32 MiB);
 *   - a stalled client with the budget lifted (1 TiB: the behaviour before the budget existed).
 * Each mode runs in a fresh Node process (this script with MODE set), so no mode inherits another's
 * heap. Printed per mode: spawngate's RSS before, its peak while the kernel prints, after (collected,
 * the stalled client still connected unless spawngate closed it), the most bytes queued for clients,
 * whether the stalled client was closed, and the reader's wall time.
 *
 * run: npx tsx bench/channels/slow-client.ts     (env MIB=300)
 */
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import type WebSocket from 'ws';
import { createTestPostgres } from '../../tests/db/helpers';
import { childReader } from '../../tests/support/child-reader';
import { connectWs } from '../../tests/support/jupyter-ws';
import { KERNEL_NAME, startSpawngate } from '../kernels/common';

const MIB = Number(process.env.MIB ?? 300);
const MiB = 1024 * 1024;
const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
const rss = (): number => process.memoryUsage().rss;
const mib = (n: number): string => (n / MiB).toFixed(0);

interface Mode {
  name: string;
  stalled: boolean;
  budget?: number;
}

async function measure(mode: Mode): Promise<string[]> {
  const pg = await createTestPostgres();
  const yaml = mode.budget === undefined ? undefined : `kernels:\n  channel_buffer_bytes: ${mode.budget}\n`;
  const sg = await startSpawngate({ users: ['bench'], yaml, env: { SPAWNGATE_DATABASE_URL: pg.url, SPAWNGATE_LOCAL_SHARED_IDENTITY: '1' } });
  try {
    const token = sg.tokens.get('bench')!;
    const res = await fetch(`${sg.base}/api/kernels`, { method: 'POST', headers: { Authorization: `token ${token}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ name: KERNEL_NAME }) });
    const id = ((await res.json()) as { id: string }).id;
    const url = `ws://127.0.0.1:${sg.port}/api/kernels/${id}/channels`;
    const code = `import sys\nfor _ in range(${MIB}):\n    sys.stdout.write('x' * ${MiB})\n    sys.stdout.flush()\nprint('END')`;
    const reader = childReader(url, token, code);
    await reader.attached;
    let stalled: WebSocket | undefined;
    if (mode.stalled) {
      stalled = await connectWs(url, { Authorization: `token ${token}` });
      stalled.pause();
    }
    const bridge = sg.service.kernels.registry.get(id)!;
    while (bridge.connections < (mode.stalled ? 2 : 1)) await new Promise((r) => setTimeout(r, 20));
    gc();
    const before = rss();
    let peak = before;
    let held = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rss());
      held = Math.max(held, bridge.clientBufferedBytes);
    }, 20);
    const t0 = performance.now();
    reader.start();
    const r = await reader.result;
    const seconds = (performance.now() - t0) / 1000;
    clearInterval(sampler);
    await new Promise((res) => setTimeout(res, 1500));
    const closed = stalled ? bridge.connections === 0 : undefined;
    gc();
    const after = rss();
    stalled?.terminate();
    return [
      mode.name,
      mib(before),
      mib(peak),
      `+${mib(peak - before)}`,
      mib(after),
      mib(held),
      closed === undefined ? '-' : closed ? 'yes' : 'no',
      `${mib(r.stdout)} MiB, ${r.status}`,
      seconds.toFixed(1),
    ];
  } finally {
    await sg.close();
    await pg.drop();
  }
}

const MODES: Mode[] = [
  { name: 'no stalled client', stalled: false },
  { name: 'stalled client, budget 32 MiB (default)', stalled: true },
  { name: 'stalled client, budget lifted (1 TiB)', stalled: true, budget: 1024 * 1024 * MiB },
];

async function main(): Promise<void> {
  if (process.env.MODE !== undefined) {
    console.log(JSON.stringify(await measure(MODES[Number(process.env.MODE)]!)));
    return;
  }
  const rows = [['mode', 'RSS before MiB', 'RSS peak MiB', 'growth', 'RSS after MiB', 'max queued for clients MiB', 'stalled closed', 'reader got', 'reader s']];
  for (let i = 0; i < MODES.length; i++) {
    const out = execFileSync(process.execPath, [...process.execArgv, '--expose-gc', process.argv[1]!], { env: { ...process.env, MODE: String(i) }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
    rows.push(JSON.parse(out.trim().split('\n').pop()!) as string[]);
  }
  console.log(`kernel prints ${MIB} × 1 MiB; spawngate in a fresh process per mode (Node ${process.version})`);
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
