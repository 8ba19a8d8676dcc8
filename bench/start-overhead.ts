/**
 * spawngate's own time per server start (request received → backend called), in isolation: an
 * in-process service, 200 sequential starts through its HTTP API, each server a busybox httpd, on the
 * embedded PGlite and on Postgres in the same run. `bench/hub-spawn.ts` measures the same figure with a
 * real JupyterHub competing for the two cores.
 *
 *   npx tsx bench/start-overhead.ts [--starts 200] [--database-url postgres://…]
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Transport from 'winston-transport';
import winston from 'winston';
import { loadConfig } from '../src/config';
import { createService } from '../src/compose';

const starts = Number(process.argv[process.argv.indexOf('--starts') + 1]) || 200;
const databaseUrl = process.argv.includes('--database-url') ? process.argv[process.argv.indexOf('--database-url') + 1] : 'postgres://root@127.0.0.1:5432/test';
const TOKEN = 'bench-hub-token-0123456789';

async function run(label: string, extraEnv: Record<string, string>): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-ovh-'));
  fs.writeFileSync(path.join(dir, 'c.yaml'), 'profiles:\n  - slug: sleeper\n    display_name: sleeper\n    command: ["/bin/busybox", "httpd", "-f", "-p", "127.0.0.1:{port}"]\n');
  const config = loadConfig({ SPAWNGATE_DATA_DIR: dir, SPAWNGATE_HUB_TOKEN: TOKEN, SPAWNGATE_CONFIG: path.join(dir, 'c.yaml'), SPAWNGATE_PORT: '0', ...extraEnv });
  const overheads: number[] = [];
  class Capture extends Transport {
    override log(info: { message?: string; overheadMs?: number }, next: () => void): void {
      if (info.message === 'backend called' && typeof info.overheadMs === 'number') overheads.push(info.overheadMs);
      next();
    }
  }
  const logger = winston.createLogger({ level: 'debug', transports: [new Capture()] });
  const service = await createService(config, { logger });
  const port = await service.listen();
  const prefix = `b${Date.now().toString(36)}`;
  try {
    for (let i = 0; i < starts + 10; i++) {
      const res = await fetch(`http://127.0.0.1:${port}/api/users/${prefix}${i}/server`, {
        method: 'POST',
        headers: { Authorization: `token ${TOKEN}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ env: { JUPYTERHUB_SERVICE_PREFIX: `/user/${prefix}${i}/`, JUPYTERHUB_API_TOKEN: 'x'.repeat(32) } }),
      });
      if (res.status !== 202) throw new Error(`start ${i}: ${res.status}`);
      // Let the start job reach the backend before the next request, as separate hub requests would.
      await new Promise((r) => setTimeout(r, 20));
    }
    const xs = overheads.slice(10).sort((a, b) => a - b); // first ten are warm-up
    const q = (p: number): string => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))]!.toFixed(2);
    console.log(`${label.padEnd(18)} n=${xs.length}  p50 ${q(0.5)} ms  p90 ${q(0.9)} ms  p99 ${q(0.99)} ms`);
  } finally {
    await service.lifecycle.stopAllNow(1);
    await service.close();
  }
}

(async () => {
  console.log(`spawngate own time per start (request received -> backend called), ${starts} starts, in-process`);
  await run('embedded PGlite', {});
  await run('Postgres', { SPAWNGATE_DATABASE_URL: databaseUrl! });
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
