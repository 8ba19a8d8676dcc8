/**
 * The composition root: wires one spawngate process: database (migrated), job queue, backend, lifecycle, HTTP app. `serve`
 * runs the API and the workers; `worker` only the workers; tests build the same thing in-process.
 */
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Backend } from '../backends';
import type { Config } from '../config';
import { startUsageSampler } from '../admin';
import { createSecretBox, loadSecretKey, migrate, openDatabase, selectExperimentQuotas, selectLiveUsage, type Db } from '../db';
import { createOidcIdentity, resolveOidcSettings } from '../identity';
import { createKernelService, createKernelspecCatalog, type KernelService } from '../kernels';
import { openJobQueue, QueueUnavailableError, type JobQueue } from '../jobs';
import { createServerLifecycle, ServerNotifier, type ServerLifecycle } from '../servers';
import { logger as rootLogger, registerSecret, type Logger } from '../logging';
import { createMetrics, registerUsageMetrics, type Metrics } from '../metrics';
import { createProfileCatalog } from '../profiles';
import {
  createAdminRouter,
  createApp,
  createWorkerApp,
  createGatewayKernelRouter,
  createHubServerRouter,
  createIdentityResolver,
  createKernelChannelsHandler,
  createRawTargetListener,
  createKernelspecRouter,
} from '../spawner-api';
import { createBackend } from './backend-factory';

export interface ServiceOptions {
  /** Run HTTP API (default true). */
  api?: boolean;
  /** Run job workers and reconciliation in this process (default true). */
  workers?: boolean;
  logger?: Logger;
  /** Inject a backend (tests). */
  backend?: Backend;
  version?: string;
}

export interface Service {
  config: Config;
  db: Db;
  queue: JobQueue;
  backend: Backend;
  metrics: Metrics;
  lifecycle: ServerLifecycle;
  kernels: KernelService;
  app?: ReturnType<typeof createApp>;
  /**
   * Listens on SPAWNGATE_BIND:SPAWNGATE_PORT (port 0: any), a worker on SPAWNGATE_WORKER_METRICS_PORT;
   * resolves with the bound port.
   */
  listen(): Promise<number>;
  /** Graceful stop: stop accepting, let jobs finish, close connections. Workloads keep running. */
  close(opts?: { stopWorkloads?: boolean }): Promise<void>;
}

export async function createService(config: Config, opts: ServiceOptions = {}): Promise<Service> {
  const logger = opts.logger ?? rootLogger;
  // Everything this process creates (data directory, embedded database, logs, connection files) is
  // for spawngate alone: no group or other bit, whichever entry point created the service. `close`
  // restores the previous mask, so an embedding process (a test runner) gets its own back.
  const previousUmask = process.umask(0o077);
  registerSecret(config.env.SPAWNGATE_HUB_TOKEN);
  registerSecret(config.env.SPAWNGATE_ADMIN_TOKEN);
  // OIDC settings are checked before anything is opened: a bad combination stops start-up (ConfigError).
  const oidcSettings = resolveOidcSettings(config);
  fs.mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  try {
    fs.chmodSync(config.dataDir, 0o700);
  } catch (err) {
    logger.warn('cannot make the data directory private (0700); is it owned by another user?', { dataDir: config.dataDir, error: err });
  }

  const api = opts.api !== false;
  const db = await openDatabase({ databaseUrl: config.env.SPAWNGATE_DATABASE_URL, dataDir: config.dataDir, role: api ? 'serve' : 'worker' });
  let queue: JobQueue | undefined;
  let backend: Backend | undefined;
  try {
    await migrate(db);
    queue = await openJobQueue({
      redisUrl: config.env.SPAWNGATE_REDIS_URL,
      prefix: config.env.SPAWNGATE_QUEUE_PREFIX,
      logger,
      lockDurationMs: config.env.SPAWNGATE_JOB_LOCK_SECONDS * 1000,
    });
    try {
      await queue.ping();
    } catch (err) {
      throw new QueueUnavailableError(`SPAWNGATE_REDIS_URL: Redis at ${redisAddress(config.env.SPAWNGATE_REDIS_URL)} is unreachable (${(err as Error).message}); check that Redis runs and the URL points at it`);
    }
    backend = opts.backend ?? createBackend(config, logger, db);
  } catch (err) {
    await queue?.close(0).catch(() => undefined);
    await db.close().catch(() => undefined);
    throw err;
  }
  const metrics = createMetrics({ defaultMetrics: true });
  // The usage gauges read the shared database: the API reports them, a worker's /metrics would repeat them.
  if (api) {
    registerUsageMetrics(
      metrics.registry,
      { live: (o) => selectLiveUsage(db, o), quotas: () => selectExperimentQuotas(db) },
      {
        perUser: config.file.metrics.per_user,
        maxKernelsPerExperiment: config.file.kernels.max_kernels_per_experiment,
        onError: (err) => logger.warn('usage metrics: the database could not be read', { error: err }),
      },
    );
  }
  const notifier = new ServerNotifier();
  const catalog = createProfileCatalog(config.file.profiles);
  const lifecycle = createServerLifecycle({ db, queue, backend, config, catalog, notifier, metrics, logger });
  const secrets = createSecretBox(loadSecretKey({ configured: config.env.SPAWNGATE_SECRET_KEY, dataDir: config.dataDir }));
  const kernelspecs = createKernelspecCatalog(config, { logger });
  const kernels = createKernelService({ db, queue, backend, catalog: kernelspecs, config, secrets, logger, metrics });
  const oidc = oidcSettings ? createOidcIdentity(oidcSettings, { db, logger }) : undefined;
  // One resolver for HTTP and websocket upgrades: the same token gets the same answer on both.
  // Per-user tokens are read from Postgres at every request, never cached (db/token-batch.ts says why).
  const resolveIdentity = createIdentityResolver({ db, hubToken: config.env.SPAWNGATE_HUB_TOKEN, adminToken: config.env.SPAWNGATE_ADMIN_TOKEN, oidc });

  let stopWorkers: (() => void) | undefined;
  let stopKernelWorkers: (() => void) | undefined;
  let reconcileTimer: NodeJS.Timeout | undefined;
  let stopSampler: (() => void) | undefined;
  if (opts.workers !== false) {
    stopSampler = startUsageSampler(db, {
      intervalSeconds: config.file.usage.sample_interval_seconds,
      retentionDays: config.file.usage.retention_days,
      logger,
    });
    await lifecycle.reconcile({ startup: true });
    await kernels.reconcile({ startup: true });
    stopWorkers = lifecycle.startWorkers(config.env.SPAWNGATE_WORKER_CONCURRENCY);
    stopKernelWorkers = await kernels.startWorkers(config.env.SPAWNGATE_WORKER_CONCURRENCY);
    reconcileTimer = setInterval(() => {
      lifecycle.reconcile().catch((err) => logger.warn('periodic reconcile failed', { error: err }));
      kernels.reconcile().catch((err) => logger.warn('periodic kernel reconcile failed', { error: err }));
    }, 60_000);
    reconcileTimer.unref();
  }

  // A worker serves HTTP (its probes and /metrics) only when given SPAWNGATE_WORKER_METRICS_PORT.
  const app = api
    ? createApp({
        db,
        queue,
        metrics,
        logger,
        resolveIdentity,
        version: opts.version ?? '0.1.0',
        hubRouters: [createHubServerRouter({ db, lifecycle, catalog, notifier })],
        adminRouters: [createAdminRouter({ db })],
        gatewayRouters: [
          createKernelspecRouter({ catalog: kernelspecs }),
          createGatewayKernelRouter({ version: opts.version ?? '0.1.0', kernels, db }),
        ],
      })
    : config.env.SPAWNGATE_WORKER_METRICS_PORT === undefined
      ? undefined
      : createWorkerApp({ db, queue, metrics, logger });
  const channels = createKernelChannelsHandler({ kernels, resolveIdentity, logger, db });
  let server: http.Server | undefined;
  let listener: net.Server | undefined;
  const sockets = new Set<Duplex>();
  const b = backend;
  const q = queue;

  return {
    config,
    db,
    queue: q,
    backend: b,
    metrics,
    lifecycle,
    kernels,
    app,
    listen() {
      if (!app) return Promise.reject(new Error('this service serves no HTTP (a worker without SPAWNGATE_WORKER_METRICS_PORT)'));
      const [port, portVar] = api ? [config.env.SPAWNGATE_PORT, 'SPAWNGATE_PORT'] : [config.env.SPAWNGATE_WORKER_METRICS_PORT, 'SPAWNGATE_WORKER_METRICS_PORT'];
      return new Promise((resolve, reject) => {
        server = http.createServer(app);
        if (api) server.on('upgrade', (req, socket, head) => void channels.handleUpgrade(req, socket, head));
        server.on('connection', (s: Duplex) => {
          sockets.add(s);
          s.on('close', () => sockets.delete(s));
        });
        // jupyter_server sends user names raw in request targets; the listener encodes them for Node's parser.
        listener = createRawTargetListener(server);
        listener.once('error', (err: NodeJS.ErrnoException) =>
          reject(err.code === 'EADDRINUSE' ? new Error(`${portVar}: port ${port} is already in use`) : err),
        );
        listener.listen(port, config.env.SPAWNGATE_BIND, () => resolve((listener!.address() as AddressInfo).port));
      });
    },
    async close(closeOpts = {}) {
      if (reconcileTimer) clearInterval(reconcileTimer);
      stopSampler?.();
      // Websocket clients get a 1001 "going away" and reconnect (to another replica): kernels keep running.
      await kernels.close();
      channels.close();
      if (listener) {
        const closing = new Promise<void>((r) => listener!.close(() => r()));
        // Long-polls and progress streams would hold the close open; they are safe to cut.
        setTimeout(() => sockets.forEach((s) => s.destroy()), 1000).unref();
        await closing;
      }
      stopWorkers?.();
      stopKernelWorkers?.();
      await q.close(10_000);
      await b.close({ stopAll: closeOpts.stopWorkloads });
      await db.close();
      process.umask(previousUmask);
    },
  };
}

/** host:port of a Redis URL, without credentials. */
function redisAddress(url: string | undefined): string {
  try {
    const u = new URL(url ?? '');
    return `${u.hostname}:${u.port || 6379}`;
  } catch {
    return '(unparsable URL)';
  }
}
