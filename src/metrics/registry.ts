/**
 * Prometheus metrics shared by the API and the workers. One registry per service instance so tests
 * can run several services in one process without "metric already registered" errors.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface Metrics {
  registry: Registry;
  spawns: Counter<'outcome'>;
  spawnDuration: Histogram<'outcome'>;
  /** Request received → backend called, the part of a start that is spawngate's own. */
  startOverhead: Histogram;
  queueWait: Histogram<'job'>;
  queueJobs: Gauge<'state'>;
  httpDuration: Histogram<'method' | 'route' | 'status'>;
  /** Launches refused before anything was queued, by what refused them (docs/metrics.md lists the reasons). */
  launchesRefused: Counter<'kind' | 'reason' | 'limit'>;
  /** POST /api/kernels on the API replica: request → kernel answering (`started`) or launch failed (`failed`), by backend. */
  kernelStartDuration: Histogram<'backend' | 'outcome'>;
}

export function createMetrics(opts: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (opts.defaultMetrics) collectDefaultMetrics({ register: registry, prefix: 'spawngate_' });
  return {
    registry,
    spawns: new Counter({
      name: 'spawngate_spawns_total',
      help: 'Server starts by outcome (ready, failed, cancelled)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    spawnDuration: new Histogram({
      name: 'spawngate_spawn_duration_seconds',
      help: 'Seconds from start request to ready or failed',
      labelNames: ['outcome'],
      buckets: [0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300],
      registers: [registry],
    }),
    startOverhead: new Histogram({
      name: 'spawngate_start_overhead_seconds',
      help: "Seconds from start request received to the backend being called (spawngate's own time)",
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1],
      registers: [registry],
    }),
    queueWait: new Histogram({
      name: 'spawngate_queue_wait_seconds',
      help: 'Seconds a job waited in the queue before a worker took it',
      labelNames: ['job'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers: [registry],
    }),
    queueJobs: new Gauge({
      name: 'spawngate_queue_jobs',
      help: 'Jobs in the queue by state (waiting, active, delayed)',
      labelNames: ['state'],
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'spawngate_http_request_duration_seconds',
      help: 'HTTP request latency by method, route and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5],
      registers: [registry],
    }),
    launchesRefused: new Counter({
      name: 'spawngate_launches_refused_total',
      help: 'Kernel and server launches refused by this replica, by kind, reason and (for fair_share) the limit that was hit',
      labelNames: ['kind', 'reason', 'limit'],
      registers: [registry],
    }),
    kernelStartDuration: new Histogram({
      name: 'spawngate_kernel_start_duration_seconds',
      help: 'Seconds from a kernel start request to the kernel answering (started) or the launch failing (failed), by backend; refusals are not timed',
      labelNames: ['backend', 'outcome'],
      buckets: [0.25, 0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300],
      registers: [registry],
    }),
  };
}
