/**
 * Liveness, readiness and Prometheus metrics: served by the API and, when asked, by a separate
 * `spawngate worker` (app.ts: createWorkerApp), from this one router.
 */
import { Router } from 'express';
import type { Db } from '../db';
import type { JobQueue } from '../jobs';
import type { Metrics } from '../metrics';

export interface ProbeDeps {
  db: Pick<Db, 'ping'>;
  queue: Pick<JobQueue, 'ping' | 'counts'>;
  metrics: Metrics;
  /**
   * Whether a scrape refreshes `spawngate_queue_jobs` from the queue. The queue is shared, so one kind
   * of process reporting it is enough: the API does, workers do not (their series would repeat it).
   */
  queueGauge?: boolean;
}

export function createProbeRouter(deps: ProbeDeps): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => void res.json({ status: 'ok' }));
  router.get('/readyz', async (_req, res) => {
    const checks: Record<string, string> = {};
    let ok = true;
    for (const [name, check] of [
      ['database', () => deps.db.ping()],
      ['queue', () => deps.queue.ping()],
    ] as const) {
      try {
        await check();
        checks[name] = 'ok';
      } catch (err) {
        ok = false;
        checks[name] = (err as Error).message;
      }
    }
    res.status(ok ? 200 : 503).json({ status: ok ? 'ok' : 'unavailable', checks });
  });
  router.get('/metrics', async (_req, res) => {
    if (deps.queueGauge !== false) {
      try {
        const counts = await deps.queue.counts();
        for (const [state, n] of Object.entries(counts)) deps.metrics.queueJobs.set({ state }, n);
      } catch {
        // Queue down: the gauge keeps its last value; /readyz reports the outage.
      }
    }
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });
  return router;
}
