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

/** Express 5 forwards a rejected handler to the error handler, which maps AdminErrors (error-mapper.ts). */
const handle = (fn: (req: Request, res: Response) => Promise<unknown>) =>
  async function adminHandler(req: Request, res: Response): Promise<void> {
    await fn(req, res);
  };

const flag = (v: unknown): boolean => v === 'true' || v === '1';
const param = (req: Request, name: string): string => String(req.params[name]);

export function createAdminRouter(deps: { db: Db }): Router {
  const { db } = deps;
  const r = Router();
  r.use(requireAdmin());

  r.get('/experiments', handle(async (req, res) => void res.json({ experiments: await listExperiments(db, { includeInactive: !flag(req.query.active_only) }) })));
  r.post('/experiments', handle(async (req, res) => void res.status(201).json(await createExperiment(db, actorOf(res), req.body))));
  r.get('/experiments/:name', handle(async (req, res) => void res.json(await getExperiment(db, param(req, 'name')))));
  r.patch('/experiments/:name', handle(async (req, res) => void res.json(await updateExperiment(db, actorOf(res), param(req, 'name'), req.body))));
  r.post('/experiments/:name/deactivate', handle(async (req, res) => void res.json(await setExperimentActive(db, actorOf(res), param(req, 'name'), false))));
  r.post('/experiments/:name/activate', handle(async (req, res) => void res.json(await setExperimentActive(db, actorOf(res), param(req, 'name'), true))));
  r.get('/experiments/:name/members', handle(async (req, res) => void res.json({ members: await listMembers(db, param(req, 'name')) })));
  r.post('/experiments/:name/members', handle(async (req, res) => void res.status(201).json(await addMember(db, actorOf(res), param(req, 'name'), req.body))));
  r.delete(
    '/experiments/:name/members/:username',
    handle(async (req, res) => {
      await removeMember(db, actorOf(res), param(req, 'name'), param(req, 'username'));
      res.status(204).end();
    }),
  );
  r.get('/experiments/:name/usage', handle(async (req, res) => void res.json(await getUsage(db, param(req, 'name')))));
  r.get('/usage', handle(async (_req, res) => void res.json({ usage: await listUsage(db) })));

  r.get('/environments', handle(async (req, res) => void res.json({ environments: await listEnvironments(db, { experiment: typeof req.query.experiment === 'string' ? req.query.experiment : undefined }) })));
  r.post('/environments', handle(async (req, res) => void res.status(201).json(await createEnvironment(db, actorOf(res), req.body))));
  r.get('/environments/:name', handle(async (req, res) => void res.json(await getEnvironment(db, param(req, 'name')))));
  r.patch('/environments/:name', handle(async (req, res) => void res.json(await updateEnvironment(db, actorOf(res), param(req, 'name'), req.body))));
  r.delete(
    '/environments/:name',
    handle(async (req, res) => {
      await deleteEnvironment(db, actorOf(res), param(req, 'name'));
      res.status(204).end();
    }),
  );

  r.get('/users', handle(async (req, res) => void res.json({ users: await listUsers(db, { includeInactive: !flag(req.query.active_only) }) })));
  r.post('/users', handle(async (req, res) => void res.status(201).json(await createUser(db, actorOf(res), req.body))));
  r.get('/users/:username', handle(async (req, res) => void res.json(await getUser(db, param(req, 'username')))));
  r.patch('/users/:username', handle(async (req, res) => void res.json(await updateUser(db, actorOf(res), param(req, 'username'), req.body))));
  r.post('/users/:username/deactivate', handle(async (req, res) => void res.json(await setUserActive(db, actorOf(res), param(req, 'username'), false))));
  r.post('/users/:username/activate', handle(async (req, res) => void res.json(await setUserActive(db, actorOf(res), param(req, 'username'), true))));

  r.get('/audit', handle(async (req, res) => void res.json({ entries: await listAudit(db, req.query) })));
  addTokenRoutes(r, db);
  return r;
}
