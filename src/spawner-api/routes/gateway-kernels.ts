/**
 * The kernel half of the Enterprise-Gateway-compatible gateway: `GET /api`, `GET|POST /api/kernels`,
 * `GET|DELETE /api/kernels/{id}`, `POST /api/kernels/{id}/interrupt|restart`. A user token sees and
 * touches only its user's kernels; the admin/hub token acts for anyone (`?user=` filters listings,
 * `KERNEL_USERNAME` in the launch env names the owner).
 */
import { Router, type NextFunction, type Request, type Response } from 'express';
import {
  GatewayUserDeniedError,
  InvalidUsernameError,
  KernelLaunchError,
  KernelNotFoundError,
  KernelQuotaError,
  KernelRequestError,
  KernelspecForbiddenError,
  KernelspecNotFoundError,
  type KernelService,
} from '../../kernels';
import { HttpError, badRequest } from '../errors';
import { actingUser, identityOf } from '../identity';

export interface GatewayKernelRouterDeps {
  version: string;
  kernels: KernelService;
}

export function kernelHttpError(err: unknown): unknown {
  if (err instanceof KernelRequestError || err instanceof InvalidUsernameError) return new HttpError(400, err.message, { cause: err });
  if (err instanceof KernelQuotaError || err instanceof GatewayUserDeniedError || err instanceof KernelspecForbiddenError) {
    return new HttpError(403, err.message, { cause: err });
  }
  if (err instanceof KernelNotFoundError || err instanceof KernelspecNotFoundError) return new HttpError(404, err.message, { cause: err });
  if (err instanceof KernelLaunchError) return new HttpError(500, `Kernel launch failed: ${err.message}`, { cause: err });
  return err;
}

/** Wraps a handler so the kernels module's named errors become HTTP errors. */
function mapped(fn: (req: Request, res: Response) => Promise<void>) {
  return async function mappedHandler(req: Request, res: Response, next: NextFunction): Promise<void> {
    try {
      await fn(req, res);
    } catch (err) {
      next(kernelHttpError(err));
    }
  };
}

const ID = '/api/kernels/:kernel_id';

export function createGatewayKernelRouter(deps: GatewayKernelRouterDeps): Router {
  const { kernels } = deps;
  const router = Router();
  const userFor = (req: Request, res: Response, requested?: string): string | undefined =>
    actingUser(identityOf(res), requested ?? (typeof req.query.user === 'string' && req.query.user !== '' ? req.query.user : undefined));

  router.get('/api', function gatewayVersion(_req, res) {
    res.json({ version: deps.version, gateway: 'spawngate' });
  });

  router.get(
    '/api/kernels',
    mapped(async (req, res) => {
      res.json(await kernels.list(userFor(req, res)));
    }),
  );

  router.post(
    '/api/kernels',
    mapped(async (req, res) => {
      const body = (req.body ?? {}) as { name?: unknown; env?: unknown };
      if (typeof body !== 'object' || Array.isArray(body)) throw badRequest('the body must be a JSON object');
      const env = body.env && typeof body.env === 'object' ? (body.env as Record<string, unknown>) : {};
      const named = typeof env.KERNEL_USERNAME === 'string' && env.KERNEL_USERNAME !== '' ? env.KERNEL_USERNAME : undefined;
      const user = userFor(req, res, named);
      if (user === undefined) throw badRequest('name the kernel owner with KERNEL_USERNAME in env (admin and hub tokens act for no one by default)');
      const model = await kernels.start(user, body);
      res.status(201).location(`/api/kernels/${model.id}`).json(model);
    }),
  );

  router.get(
    ID,
    mapped(async (req, res) => {
      res.json(await kernels.get(userFor(req, res), String(req.params.kernel_id)));
    }),
  );

  router.delete(
    ID,
    mapped(async (req, res) => {
      await kernels.shutdown(userFor(req, res), String(req.params.kernel_id));
      res.status(204).end();
    }),
  );

  router.post(
    `${ID}/interrupt`,
    mapped(async (req, res) => {
      await kernels.interrupt(userFor(req, res), String(req.params.kernel_id));
      res.status(204).end();
    }),
  );

  router.post(
    `${ID}/restart`,
    mapped(async (req, res) => {
      res.json(await kernels.restart(userFor(req, res), String(req.params.kernel_id)));
    }),
  );

  return router;
}
