/**
 * The kernel half of the Enterprise-Gateway-compatible gateway: `GET /api`, `GET|POST /api/kernels`,
 * `GET|DELETE /api/kernels/{id}`, `POST /api/kernels/{id}/interrupt|restart`. A user token sees and
 * touches only its user's kernels; the admin token acts for anyone (`?user=` filters listings,
 * `KERNEL_USERNAME` in the launch env names the owner); the hub token is refused. Errors of the
 * kernels module reach the error mapper unchanged.
 */
import { Router, type Request, type Response } from 'express';
import type { Queryable } from '../../db';
import type { KernelService } from '../../kernels';
import { actingUser, identityOf } from '../auth/identity';
import { refuseDeactivated } from '../auth/middleware';
import { badRequest } from '../errors';
import { rawQueryParam } from './user-param';

export interface GatewayKernelRouterDeps {
  version: string;
  kernels: KernelService;
  /** Where `users.active` is read: a deactivated user gets no new kernel, whoever asks. */
  db: Queryable;
}

const ID = '/api/kernels/:kernel_id';

export function createGatewayKernelRouter(deps: GatewayKernelRouterDeps): Router {
  const { kernels, db } = deps;
  const router = Router();
  const userFor = (req: Request, res: Response, requested?: string): string | undefined =>
    actingUser(identityOf(res), requested ?? rawQueryParam(req.originalUrl, 'user'));
  const kernelId = (req: Request): string => String(req.params.kernel_id);

  router.get('/api', function gatewayVersion(_req, res) {
    // EG answers `version` and `gateway_version`; `gateway` names this implementation.
    res.json({ version: deps.version, gateway_version: deps.version, gateway: 'spawngate' });
  });

  router.get('/api/kernels', async function listKernels(req, res) {
    res.json(await kernels.list(userFor(req, res)));
  });

  router.post('/api/kernels', async function startKernel(req, res) {
    const body = (req.body ?? {}) as { name?: unknown; env?: unknown };
    if (typeof body !== 'object' || Array.isArray(body)) throw badRequest('the body must be a JSON object');
    const env = body.env && typeof body.env === 'object' ? (body.env as Record<string, unknown>) : {};
    const named = typeof env.KERNEL_USERNAME === 'string' && env.KERNEL_USERNAME !== '' ? env.KERNEL_USERNAME : undefined;
    const user = userFor(req, res, named);
    if (user === undefined) throw badRequest('name the kernel owner with KERNEL_USERNAME in env (the admin token acts for no one by default)');
    await refuseDeactivated(db, user);
    const model = await kernels.start(user, body);
    res.status(201).location(`/api/kernels/${model.id}`).json(model);
  });

  router.get(ID, async function getKernel(req, res) {
    res.json(await kernels.get(userFor(req, res), kernelId(req)));
  });

  router.delete(ID, async function shutdownKernel(req, res) {
    await kernels.shutdown(userFor(req, res), kernelId(req));
    res.status(204).end();
  });

  router.post(`${ID}/interrupt`, async function interruptKernel(req, res) {
    await kernels.interrupt(userFor(req, res), kernelId(req));
    res.status(204).end();
  });

  router.post(`${ID}/restart`, async function restartKernel(req, res) {
    res.json(await kernels.restart(userFor(req, res), kernelId(req)));
  });

  return router;
}
