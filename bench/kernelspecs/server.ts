/**
 * The server side of the kernelspec benchmark, run as its own process by bench.ts: the service's real
 * request path for `GET /api/kernelspecs`, wired as src/compose/service.ts wires it — the raw-target
 * listener in front of `createApp` (request context, metrics, winston at info, authentication through
 * the identity resolver with its per-request token query, the error handler),
 * the kernelspec router and a fresh index. Only `/__bench/memory` is added.
 *
 *   node --expose-gc --import tsx bench/kernelspecs/server.ts <homes> <shared> <database url> <admin token>
 *
 * Prints `PORT <n>` on stdout once listening; exits on SIGTERM.
 */
import http from 'node:http';
import net from 'node:net';
import { Router } from 'express';
import { createPostgresDb } from '../../src/db';
import { createInProcessQueue } from '../../src/jobs';
import { KernelspecCatalog, KernelspecIndex } from '../../src/kernels';
import { logger } from '../../src/logging';
import { createMetrics } from '../../src/metrics';
import { createApp, createIdentityResolver, createKernelspecRouter, createRawTargetListener } from '../../src/spawner-api';

async function main(): Promise<void> {
  const [homes, shared, url, adminToken] = process.argv.slice(2) as [string, string, string, string];
  const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);
  const db = createPostgresDb({ url, logger });
  const ttl = process.env.SPAWNGATE_BENCH_TTL_MS; // bench.ts --ttl
  const index = new KernelspecIndex({ homeRoot: homes, sharedDirs: [shared], logger, ...(ttl ? { ttlMs: Number(ttl) } : {}) });
  const catalog = new KernelspecCatalog({ index });
  const memory = Router();
  memory.get('/__bench/memory', (_req, res) => {
    gc();
    gc();
    res.json({ ...process.memoryUsage(), ...index.stats() });
  });
  const app = createApp({
    db,
    queue: createInProcessQueue({ logger }),
    metrics: createMetrics(),
    logger,
    resolveIdentity: createIdentityResolver({ db, adminToken }),
    version: 'bench',
    hubRouters: [],
    gatewayRouters: [memory, createKernelspecRouter({ catalog })],
  });
  process.on('SIGTERM', () => process.exit(0)); // lets --cpu-prof write its profile
  const listener = createRawTargetListener(http.createServer(app));
  listener.listen(0, '127.0.0.1', () => {
    process.stdout.write(`PORT ${(listener.address() as net.AddressInfo).port}\n`);
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
