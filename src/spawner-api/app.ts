/**
 * Assembles the express app: request ids and logging, metrics, authentication, the hub and gateway
 * routes, health, OpenAPI, and one error handler that answers `{"reason", "message"}` through the
 * error mapper.
 */
import express, { type NextFunction, type Request, type Response, type Router } from 'express';
import swaggerUi from 'swagger-ui-express';
import type { Db } from '../db';
import type { JobQueue } from '../jobs';
import type { Logger } from '../logging';
import type { Metrics } from '../metrics';
import { authenticate, parseJsonBodyOfAuthenticated, requireAuthenticated, requireHub } from './auth/middleware';
import type { IdentityResolver } from './auth/resolve-identity';
import { errorBody, toHttpAnswer } from './error-mapper';
import { HttpError } from './errors';
import { requestContext, routeMount } from './request-context';
import { buildOpenApiDocument } from './openapi';
import { createAdminPageRouter } from './admin-page';
import { createProbeRouter } from './probes';

export interface AppDeps {
  db: Db;
  queue: JobQueue;
  metrics: Metrics;
  logger: Logger;
  /** Token → identity (auth/resolve-identity.ts), shared with the websocket upgrade. */
  resolveIdentity: IdentityResolver;
  version: string;
  /** Routes only the hub/admin may call. */
  hubRouters: Router[];
  /** Gateway routes; they check the identity themselves (auth/identity.ts: actingUser). */
  gatewayRouters: Router[];
  /** Admin API routers, mounted under /api/admin (they require an admin identity themselves). */
  adminRouters?: Router[];
}

function errorHandler(logger: Logger) {
  return function errorHandler(err: unknown, _req: Request, res: Response, _next: NextFunction): void {
    const answer = toHttpAnswer(err);
    if (answer.status >= 500) logger.error('request failed', { requestId: res.locals.requestId, status: answer.status, error: err });
    else if (answer.logDetail) logger.info('request refused', { requestId: res.locals.requestId, status: answer.status, ...answer.logDetail });
    if (res.headersSent) return void res.end();
    for (const [k, v] of Object.entries(answer.headers ?? {})) res.setHeader(k, v);
    res.status(answer.status).json(errorBody(answer));
  };
}

export function createApp(deps: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(requestContext(deps.logger, deps.metrics));

  app.use(createProbeRouter(deps));
  const openapi = buildOpenApiDocument(deps.version);
  app.get('/api/openapi.json', (_req, res) => void res.json(openapi));
  app.use('/api/docs', routeMount('/api/docs'), swaggerUi.serve, swaggerUi.setup(openapi, { customSiteTitle: 'spawngate API' }));

  // A browser opening the service's address gets a short page of where to go; JSON clients (and
  // anything preferring JSON) fall through to the API's own answer.
  app.get('/', (req, res, next) => {
    if (req.accepts(['json', 'html']) !== 'html') return next();
    res.type('html').send(landingPage(deps.version));
  });

  // The admin page's static files (no data in them); its data comes from /api/admin with a token.
  app.use(createAdminPageRouter());

  // Authentication first, then the body: an unauthenticated request is refused without reading it.
  app.use(authenticate(deps.resolveIdentity));
  app.use(parseJsonBodyOfAuthenticated('1mb'));
  for (const r of deps.gatewayRouters) app.use(r);
  for (const r of deps.adminRouters ?? []) app.use('/api/admin', routeMount('/api/admin'), requireAuthenticated(), r);
  for (const r of deps.hubRouters) app.use(requireAuthenticated(), requireHub(), r);
  app.use((req, _res, next) => next(new HttpError(404, `no route for ${req.method} ${req.path}`)));
  app.use(errorHandler(deps.logger));
  return app;
}

function landingPage(version: string): string {
  const link = (href: string, what: string): string => `<li><a href="${href}">${href}</a> ${what}</li>`;
  return `<!doctype html><html><head><meta charset="utf-8"><title>spawngate</title></head><body>
<h1>spawngate ${version.replace(/[^0-9A-Za-z.+-]/g, '')}</h1>
<p>This is the spawner service behind JupyterHub; users sign in at the hub, not here.</p>
<ul>${link('/api/docs/', 'API reference')}${link('/healthz', 'liveness')}${link('/readyz', 'readiness (database, queue)')}${link('/metrics', 'Prometheus metrics')}${link('/admin/', 'usage page for administrators')}</ul>
</body></html>
`;
}

/**
 * What a `spawngate worker` serves when asked to (SPAWNGATE_WORKER_METRICS_PORT): the same probes and
 * /metrics as the API, so the jobs it runs (launches, starts) are seen by Prometheus, and nothing else.
 */
export function createWorkerApp(deps: Pick<AppDeps, 'db' | 'queue' | 'metrics' | 'logger'>): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(requestContext(deps.logger, deps.metrics));
  app.use(createProbeRouter({ ...deps, queueGauge: false }));
  app.use((req, _res, next) => next(new HttpError(404, `a worker serves /healthz, /readyz and /metrics only, not ${req.method} ${req.path}`)));
  app.use(errorHandler(deps.logger));
  return app;
}
