/**
 * The kernelspec half of the Enterprise-Gateway-compatible gateway (DESIGN §2):
 *
 * - `GET /api/kernelspecs[?user=]` → `{"default", "kernelspecs": {name: {name, spec, resources}}}`
 * - `GET /api/kernelspecs/{name}[?user=]` → one model; 404 unknown, 403 not authorized (as EG)
 * - `GET /kernelspecs/{name}/{file}[?user=]` → the resource bytes with their content type
 *
 * The user is `actingUser(identity, ?user)`: a user token acts as its user (naming another is 403);
 * the admin token must name the user to see that user's kernelspecs — naming nobody, it sees the
 * shared kernelspecs not restricted to named users. The hub token is refused (403). The kernels
 * module's errors reach the error mapper as they are; resource errors name no path.
 *
 * jupyter_server (1.x and 2.x) quirk, honoured: with `KERNEL_USERNAME` set it builds the single-spec
 * URL as `/api/kernelspecs?user=<user>/<name>` (it appends the name to a URL that already has a query
 * string). A `user` value containing `/` is therefore read as `<user>/<kernelspec name>` and answered
 * with that one model. How `user` is decoded (without turning `+` into a space, because jupyter_server
 * sends `KERNEL_USERNAME` unescaped): see user-param.ts.
 */
import { Router, type Request, type Response } from 'express';
import type { KernelspecCatalog } from '../../kernels';
import { actingUser, identityOf } from '../auth/identity';
import { rawQueryParam } from './user-param';

export interface KernelspecRouterDeps {
  catalog: KernelspecCatalog;
}

/** Writes a pre-serialized JSON body (models are serialized once and cached by the catalogue). */
function sendJson(res: Response, body: string): void {
  res.writeHead(200, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

export function createKernelspecRouter(deps: KernelspecRouterDeps): Router {
  const { catalog } = deps;
  const router = Router();

  router.get('/api/kernelspecs', async function listKernelspecs(req: Request, res: Response) {
    const identity = identityOf(res);
    let requested = rawQueryParam(req.originalUrl, 'user');
    let single: string | undefined;
    if (requested !== undefined && requested.includes('/')) {
      const slash = requested.indexOf('/');
      single = requested.slice(slash + 1);
      requested = requested.slice(0, slash) || undefined;
    }
    const user = actingUser(identity, requested);
    if (single !== undefined) return sendJson(res, JSON.stringify(await catalog.model(user, single)));
    sendJson(res, catalog.listingJson(await catalog.list(user)));
  });

  router.get(
    '/api/kernelspecs/:name',
    async function getKernelspec(req: Request<{ name: string }>, res: Response) {
      const user = actingUser(identityOf(res), rawQueryParam(req.originalUrl, 'user'));
      sendJson(res, JSON.stringify(await catalog.model(user, req.params.name)));
    },
  );

  router.get(
    '/kernelspecs/:name/:resource',
    async function getKernelspecResource(req: Request<{ name: string; resource: string }>, res: Response) {
      const user = actingUser(identityOf(res), rawQueryParam(req.originalUrl, 'user'));
      const found = await catalog.resource(user, req.params.name, req.params.resource);
      res.setHeader('Content-Type', found.contentType);
      res.setHeader('X-Content-Type-Options', 'nosniff');
      res.setHeader('Cache-Control', 'private, max-age=300');
      // Files come from user-writable directories: never let one run as a page of this origin.
      res.setHeader('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'; sandbox");
      res.status(200).send(found.data);
    },
  );

  return router;
}
