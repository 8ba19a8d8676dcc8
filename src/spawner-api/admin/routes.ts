/**
 * The admin API under `/api/admin` (admin token, or an OIDC token with the admin role): experiments,
 * environments, members, users, tokens, usage and the audit log. Inputs are validated by src/admin
 * with zod; the error mapper turns its errors into 400 (invalid), 404 (unknown name) and 409 (conflict).
 */
import { Router, type Request, type Response } from 'express';
import {
  addMember,
  createEnvironment,
  createExperiment,
  createUser,
  deleteEnvironment,
  getEnvironment,
  getExperiment,
  getUsage,
  getUser,
  listAudit,
  listEnvironments,
  listExperiments,
  listMembers,
  listUsage,
  listUsageHistory,
  listUsers,
  removeMember,
  setExperimentActive,
  setUserActive,
  updateEnvironment,
  updateExperiment,
  updateUser,
} from '../../admin';
import type { Db } from '../../db';
import { requireAdmin } from '../auth/middleware';
import { actorOf } from './actor';
import { addTokenRoutes } from './tokens';


const flag = (v: unknown): boolean => v === 'true' || v === '1';
const param = (req: Request, name: string): string => String(req.params[name]);

export function createAdminRouter(deps: { db: Db }): Router {
  const { db } = deps;
  const r = Router();
  r.use(requireAdmin());

  r.get('/experiments', async (req: Request, res: Response) => void res.json({ experiments: await listExperiments(db, { includeInactive: !flag(req.query.active_only) }) }));
  r.post('/experiments', async (req: Request, res: Response) => void res.status(201).json(await createExperiment(db, actorOf(res), req.body)));
  r.get('/experiments/:name', async (req: Request, res: Response) => void res.json(await getExperiment(db, param(req, 'name'))));
  r.patch('/experiments/:name', async (req: Request, res: Response) => void res.json(await updateExperiment(db, actorOf(res), param(req, 'name'), req.body)));
  r.post('/experiments/:name/deactivate', async (req: Request, res: Response) => void res.json(await setExperimentActive(db, actorOf(res), param(req, 'name'), false)));
  r.post('/experiments/:name/activate', async (req: Request, res: Response) => void res.json(await setExperimentActive(db, actorOf(res), param(req, 'name'), true)));
  r.get('/experiments/:name/members', async (req: Request, res: Response) => void res.json({ members: await listMembers(db, param(req, 'name')) }));
  r.post('/experiments/:name/members', async (req: Request, res: Response) => void res.status(201).json(await addMember(db, actorOf(res), param(req, 'name'), req.body)));
  r.delete(
    '/experiments/:name/members/:username',
    async (req: Request, res: Response) => {
      await removeMember(db, actorOf(res), param(req, 'name'), param(req, 'username'));
      res.status(204).end();
    },
  );
  r.get('/experiments/:name/usage', async (req: Request, res: Response) => void res.json(await getUsage(db, param(req, 'name'))));
  r.get('/usage', async (_req: Request, res: Response) => void res.json({ usage: await listUsage(db) }));
  r.get('/usage/history', async (req: Request, res: Response) => void res.json({ samples: await listUsageHistory(db, req.query) }));

  r.get('/environments', async (req: Request, res: Response) => void res.json({ environments: await listEnvironments(db, { experiment: typeof req.query.experiment === 'string' ? req.query.experiment : undefined }) }));
  r.post('/environments', async (req: Request, res: Response) => void res.status(201).json(await createEnvironment(db, actorOf(res), req.body)));
  r.get('/environments/:name', async (req: Request, res: Response) => void res.json(await getEnvironment(db, param(req, 'name'))));
  r.patch('/environments/:name', async (req: Request, res: Response) => void res.json(await updateEnvironment(db, actorOf(res), param(req, 'name'), req.body)));
  r.delete(
    '/environments/:name',
    async (req: Request, res: Response) => {
      await deleteEnvironment(db, actorOf(res), param(req, 'name'));
      res.status(204).end();
    },
  );

  r.get('/users', async (req: Request, res: Response) => void res.json({ users: await listUsers(db, { includeInactive: !flag(req.query.active_only) }) }));
  r.post('/users', async (req: Request, res: Response) => void res.status(201).json(await createUser(db, actorOf(res), req.body)));
  r.get('/users/:username', async (req: Request, res: Response) => void res.json(await getUser(db, param(req, 'username'))));
  r.patch('/users/:username', async (req: Request, res: Response) => void res.json(await updateUser(db, actorOf(res), param(req, 'username'), req.body)));
  r.post('/users/:username/deactivate', async (req: Request, res: Response) => void res.json(await setUserActive(db, actorOf(res), param(req, 'username'), false)));
  r.post('/users/:username/activate', async (req: Request, res: Response) => void res.json(await setUserActive(db, actorOf(res), param(req, 'username'), true)));

  r.get('/audit', async (req: Request, res: Response) => void res.json({ entries: await listAudit(db, req.query) }));
  addTokenRoutes(r, db);
  return r;
}
