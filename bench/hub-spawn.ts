/**
 * Issue 2 benchmark: JupyterHub spawn-to-ready through RemoteSpawner + the local backend, against
 * JupyterHub's built-in `simple` spawner, same machine, same run; and spawngate's own time per start
 * (request received → backend called), read from its debug log.
 *
 *   npx tsx bench/hub-spawn.ts [--spawns 20] [--database-url postgres://…]
 */
import { performance } from 'node:perf_hooks';
import { startHub, startSpawngate, waitFor, type Hub } from '../tests/e2e/harness';

const spawns = Number(process.argv[process.argv.indexOf('--spawns') + 1]) || 20;
// --database-url postgres://…: run spawngate on Postgres instead of the embedded PGlite.
const databaseUrl = process.argv.includes('--database-url') ? process.argv[process.argv.indexOf('--database-url') + 1] : undefined;

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

async function spawnToReady(hub: Hub, user: string): Promise<number> {
  await hub.api('POST', `/users/${user}`);
  const t0 = performance.now();
  const res = await hub.api('POST', `/users/${user}/server`);
  if (res.status >= 300) throw new Error(`spawn of ${user} refused: ${res.status} ${JSON.stringify(res.body)}`);
  await waitFor(`${user} ready`, async () => {
    const { body } = await hub.api<{ servers: Record<string, { ready: boolean }> }>('GET', `/users/${user}`);
    return body.servers?.['']?.ready;
  }, 60000, 10);
  const ms = performance.now() - t0;
  await hub.api('DELETE', `/users/${user}/server`);
  await waitFor(`${user} stopped`, async () => {
    const { body } = await hub.api<{ servers: Record<string, unknown> }>('GET', `/users/${user}`);
    return !body.servers?.[''];
  }, 30000, 20);
  return ms;
}

async function main(): Promise<void> {
  const sg = await startSpawngate({ env: { SPAWNGATE_LOG_LEVEL: 'debug', ...(databaseUrl ? { SPAWNGATE_DATABASE_URL: databaseUrl } : {}) } });
  console.log(`spawngate database: ${databaseUrl ? 'Postgres' : 'embedded PGlite'}`);
  const viaSpawngate = await startHub({ spawngateUrl: sg.url, hubToken: sg.hubToken });
  const simple = await startHub({
    spawngateUrl: sg.url,
    hubToken: sg.hubToken,
    extraConfig: `c.JupyterHub.spawner_class = 'simple'\nc.Spawner.args = ['--allow-root']\n`,
  });
  const a: number[] = [];
  const b: number[] = [];
  try {
    // Interleaved so drift on the machine affects both alike; one warm-up each, not counted.
    await spawnToReady(viaSpawngate, 'warm-sg');
    await spawnToReady(simple, 'warm-simple');
    for (let i = 0; i < spawns; i++) {
      a.push(await spawnToReady(viaSpawngate, `sg${i}`));
      b.push(await spawnToReady(simple, `simple${i}`));
    }
  } catch (err) {
    console.error(sg.output().split('\n').slice(-60).join('\n'));
    console.error(viaSpawngate.output().split('\n').slice(-40).join('\n'));
    throw err;
  } finally {
    await viaSpawngate.stop();
    await simple.stop();
    await sg.stop();
  }
  const overheads = sg
    .output()
    .split('\n')
    .filter((l) => l.includes('"backend called"'))
    .map((l) => (JSON.parse(l) as { overheadMs: number }).overheadMs);
  const row = (name: string, xs: number[]): string =>
    `${name.padEnd(34)} ${quantile(xs, 0.5).toFixed(0).padStart(7)} ${quantile(xs, 0.9).toFixed(0).padStart(7)} ${Math.min(...xs).toFixed(0).padStart(7)} ${Math.max(...xs).toFixed(0).padStart(7)}`;
  console.log(`\nJupyterHub 3.0 spawn-to-ready, ${spawns} spawns each (ms)`);
  console.log(`${''.padEnd(34)} ${'p50'.padStart(7)} ${'p90'.padStart(7)} ${'min'.padStart(7)} ${'max'.padStart(7)}`);
  console.log(row('spawngate (RemoteSpawner + local)', a));
  console.log(row("JupyterHub 'simple' spawner", b));
  console.log(`ratio of medians: ${(quantile(a, 0.5) / quantile(b, 0.5)).toFixed(3)} (target <= 1.15)`);
  if (overheads.length) {
    console.log(`spawngate own time per start (request received -> backend called), n=${overheads.length}: p50 ${quantile(overheads, 0.5).toFixed(2)} ms, p99 ${quantile(overheads, 0.99).toFixed(2)} ms (target p50 < 5 ms)`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
