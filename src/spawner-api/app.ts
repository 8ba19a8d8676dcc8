/**
 * Assembles the express app: request ids and logging, metrics, authentication, the hub and gateway
 * routes, health, OpenAPI, and one error handler that answers `{"reason", "message"}`.
 */
import { randomUUID } from 'node:crypto';
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import swaggerUi from 'swagger-ui-express';
import { DatabaseUnavailableError, type Db } from '../db';
import { QueueUnavailableError, type JobQueue } from '../jobs';
import { LimitExceededError } from '../profiles';
import type { OidcIdentity } from '../identity';
import type { Logger } from '../logging';
import type { Metrics } from '../metrics';
import { authenticate, requireAuthenticated, requireHub } from './auth';
import { HttpError } from './errors';
import { buildOpenApiDocument } from './openapi';

export interface AppDeps {
  db: Db;
  queue: JobQueue;
  metrics: Metrics;
  logger: Logger;
  hubToken?: string;
  adminToken?: string;
  version: string;
  /** Routes only the hub/admin may call. */
  hubRouters: Router[];
  /** Gateway routes; they check the identity themselves (see identity.ts). */
  gatewayRouters: Router[];
  /** Admin API routers, mounted under /api/admin (they require an admin identity themselves). */
  adminRouters?: Router[];
  /** OIDC bearer tokens (src/identity), when configured. */
  oidc?: Pick<OidcIdentity, 'authenticate'>;
}

/** The route pattern of a path, so metric labels never carry user names or ids. */
const ROUTE_PATTERNS: Array<[RegExp, string]> = [
  [/^\/api\/users\/[^/]+\/server(\/progress)?$/, '/api/users/:user/server$1'],
  [/^\/api\/users\/[^/]+\/servers\/[^/]+(\/progress)?$/, '/api/users/:user/servers/:name$1'],
  [/^\/api\/users\/[^/]+\/profiles$/, '/api/users/:user/profiles'],
  [/^\/api\/kernels\/[^/]+(\/[a-z]+)?$/, '/api/kernels/:id$1'],
  [/^\/api\/kernelspecs\/[^/]+$/, '/api/kernelspecs/:name'],
  [/^\/kernelspecs\/[^/]+\/.+$/, '/kernelspecs/:name/:resource'],
  [/^\/api\/docs\/.*$/, '/api/docs'],
  [/^\/api\/admin\/([a-z]+)$/, '/api/admin/$1'],
  [/^\/api\/admin\/([a-z]+)\/[^/]+$/, '/api/admin/$1/:name'],
  [/^\/api\/admin\/([a-z]+)\/[^/]+\/([a-z]+)$/, '/api/admin/$1/:name/$2'],
  [/^\/api\/admin\/([a-z]+)\/[^/]+\/([a-z]+)\/[^/]+$/, '/api/admin/$1/:name/$2/:user'],
];

const STATIC_ROUTES = new Set(['/healthz', '/readyz', '/metrics', '/api', '/api/openapi.json', '/api/servers', '/api/kernels', '/api/kernelspecs']);

export function routeLabel(path: string): string {
  for (const [re, label] of ROUTE_PATTERNS) if (re.test(path)) return path.replace(re, label);
  return STATIC_ROUTES.has(path) ? path : 'unmatched';
}

function requestContext(logger: Logger, metrics: Metrics) {
  return function requestContext(req: Request, res: Response, next: NextFunction): void {
    const id = req.get('x-request-id')?.slice(0, 64) ?? randomUUID();
    res.setHeader('X-Request-Id', id);
    res.locals.requestId = id;
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const route = routeLabel(req.path);
      metrics.httpDuration.observe({ method: req.method, route: String(route), status: String(res.statusCode) }, seconds);
      if (req.path !== '/healthz' && req.path !== '/metrics') {
        // Paths only: query strings may carry user names we do not need, never tokens (headers only).
        logger.debug('http', { requestId: id, method: req.method, path: req.path, status: res.statusCode, ms: Math.round(seconds * 1000) });
      }
    });
    next();
  };
}

function errorHandler(logger: Logger) {
  return function errorHandler(err: unknown, _req: Request, res: Response, _next: NextFunction): void {
    let status = 500;
    let message = 'internal error';
    if (err instanceof HttpError) {
      status = err.status;
      message = err.message;
    } else if (err instanceof DatabaseUnavailableError) {
      status = 503;
      message = `database unavailable: ${err.message}`;
    } else if (err instanceof LimitExceededError) {
      status = 429;
      message = err.message;
      res.setHeader('Retry-After', String(Math.max(1, Math.ceil(err.retryAfterSeconds))));
    } else if (err instanceof QueueUnavailableError) {
      status = 503;
      message = `job queue unavailable: ${err.message}`;
    } else if (err && typeof err === 'object' && 'type' in err && (err as { type: string }).type === 'entity.too.large') {
      status = 413;
      message = 'request body too large';
    } else if (err instanceof SyntaxError && 'body' in err) {
      status = 400;
      message = 'request body is not valid JSON';
    }
    if (status >= 500) logger.error('request failed', { requestId: res.locals.requestId, status, error: err });
    if (res.headersSent) return void res.end();
    res.status(status).json({ reason: new HttpError(status, message).reason, message });
  };
}

export function createApp(deps: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(requestContext(deps.logger, deps.metrics));

  app.get('/healthz', (_req, res) => void res.json({ status: 'ok' }));
  app.get('/readyz', async (_req, res) => {
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
  app.get('/metrics', async (_req, res) => {
    try {
      const counts = await deps.queue.counts();
      for (const [state, n] of Object.entries(counts)) deps.metrics.queueJobs.set({ state }, n);
    } catch {
      // Queue down: the gauge keeps its last value; /readyz reports the outage.
    }
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });
  const openapi = buildOpenApiDocument(deps.version);
  app.get('/api/openapi.json', (_req, res) => void res.json(openapi));
  app.use('/api/docs', swaggerUi.serve, swaggerUi.setup(openapi, { customSiteTitle: 'spawngate API' }));

  app.use(express.json({ limit: '1mb' }));
  app.use(authenticate({ hubToken: deps.hubToken, adminToken: deps.adminToken, db: deps.db, oidc: deps.oidc }));
  for (const r of deps.gatewayRouters) app.use(r);
  for (const r of deps.adminRouters ?? []) app.use('/api/admin', requireAuthenticated(), r);
  for (const r of deps.hubRouters) app.use(requireAuthenticated(), requireHub(), r);
  app.use((req, _res, next) => next(new HttpError(404, `no route for ${req.method} ${req.path}`)));
  app.use(errorHandler(deps.logger));
  return app;
}
