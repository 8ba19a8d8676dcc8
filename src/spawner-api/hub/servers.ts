/**
 * Routes the hub's RemoteSpawner calls (docs/hub-api.md): start, status (with long-poll), stop,
 * progress as Server-Sent Events, list, and the profiles a user may choose.
 */
import { performance } from 'node:perf_hooks';
import { Router, type Request, type Response } from 'express';
import type { Db, ServerRow } from '../../db';
import { findServer, getServer, listServers, serverEventsAfter } from '../../db';
import { PROGRESS, progressText, type ServerLifecycle, type ServerNotifier } from '../../servers';
import type { ProfileCatalog } from '../../profiles';
import { NameError, validateServerName, validateUsername } from '../../profiles';
import { refuseDeactivated } from '../auth/middleware';
import { badRequest, conflict, notFound } from '../errors';
import { serverModelSchema, startRequestSchema, waitQuerySchema, type ServerModel } from '../schemas';

export interface HubServerRoutesDeps {
  db: Db;
  lifecycle: ServerLifecycle;
  catalog: ProfileCatalog;
  notifier: ServerNotifier;
}

export function toServerModel(row: ServerRow): ServerModel {
  return serverModelSchema.parse({
    user: row.username,
    name: row.server_name,
    state: row.state,
    generation: row.generation,
    url: row.url,
    exit_code: row.exit_code,
    message: row.message,
    last_output: row.last_output ?? [],
    profile: row.profile,
    started_at: row.started_at ? new Date(row.started_at).toISOString() : null,
    stopped_at: row.stopped_at ? new Date(row.stopped_at).toISOString() : null,
  });
}

/** User and server names from the path; a NameError becomes a 400 in the error mapper. */
function names(req: Request): { user: string; server: string } {
  const user = validateUsername(String(req.params.user));
  const server = req.params.name === undefined ? '' : validateServerName(String(req.params.name));
  if (req.params.name !== undefined && server === '') throw new NameError('a named server needs a name');
  return { user, server };
}

export function createHubServerRouter(deps: HubServerRoutesDeps): Router {
  const { db, lifecycle, catalog, notifier } = deps;
  const router = Router();
  const paths = ['/api/users/:user/server', '/api/users/:user/servers/:name'];

  router.get('/api/users/:user/profiles', (req, res) => {
    const { user } = names(req);
    res.json({
      profiles: catalog.forUser(user).map((p, i) => ({
        slug: p.slug,
        display_name: p.display_name,
        description: p.description,
        default: i === 0,
        resources: p.resources,
      })),
    });
  });

  router.get('/api/servers', async (req, res) => {
    const user = typeof req.query.user === 'string' ? validateUsername(req.query.user) : undefined;
    res.json({ servers: (await listServers(db, user)).map(toServerModel) });
  });

  async function startServer(req: Request, res: Response): Promise<void> {
    const receivedAt = performance.timeOrigin + performance.now();
    const { user, server } = names(req);
    await refuseDeactivated(db, user);
    const parsed = startRequestSchema.safeParse(req.body ?? {});
    if (!parsed.success) {
      const i = parsed.error.issues[0];
      throw badRequest(`invalid start request: ${i?.path.join('.') || 'body'}: ${i?.message}`);
    }
    // A ProfileError (invalid user_options) is a 400 with its message, through the error mapper.
    const resolved = catalog.resolve(user, parsed.data.user_options);
    const { row, created } = await lifecycle.requestStart({
      username: user,
      serverName: server,
      profile: resolved.profile,
      userOptions: parsed.data.user_options,
      env: parsed.data.env,
      args: parsed.data.args,
      startTimeoutSeconds: parsed.data.start_timeout,
      receivedAt,
    });
    if (!created && row.state === 'stopping') throw conflict(`server '${server || '(default)'}' of '${user}' is still stopping; try again shortly`);
    res.status(created ? 202 : 200).json(toServerModel(row));
  }
  for (const p of paths) router.post(p, startServer);

  async function serverStatus(req: Request, res: Response): Promise<void> {
    const { user, server } = names(req);
    const q = waitQuerySchema.safeParse(req.query);
    if (!q.success) throw badRequest(`invalid query: ${q.error.issues[0]?.message}`);
    let row = await findServer(db, user, server);
    if (!row) throw notFound(`no server '${server || '(default)'}' for user '${user}'`);
    if (q.data.wait) {
      const deadline = Date.now() + q.data.timeout * 1000;
      const closed = new AbortController();
      res.on('close', () => closed.abort());
      while (row.state === 'pending' && Date.now() < deadline && !closed.signal.aborted) {
        // Notifications from this process answer at once; the bounded wait covers other replicas.
        await notifier.wait(row.id, Math.min(250, Math.max(0, deadline - Date.now())), closed.signal);
        row = (await getServer(db, row.id)) ?? row;
      }
    }
    res.json(toServerModel(row));
  }
  for (const p of paths) router.get(p, serverStatus);

  async function stopServer(req: Request, res: Response): Promise<void> {
    const { user, server } = names(req);
    const q = waitQuerySchema.safeParse(req.query);
    if (!q.success) throw badRequest(`invalid query: ${q.error.issues[0]?.message}`);
    let row = await lifecycle.requestStop(user, server);
    if (!row) throw notFound(`no server '${server || '(default)'}' for user '${user}'`);
    if (q.data.wait === 'true') {
      const deadline = Date.now() + q.data.timeout * 1000;
      while (row.state === 'stopping' && Date.now() < deadline) {
        await notifier.wait(row.id, Math.min(250, Math.max(0, deadline - Date.now())));
        row = (await getServer(db, row.id)) ?? row;
      }
    }
    res.status(row.state === 'stopping' ? 202 : 200).json(toServerModel(row));
  }
  for (const p of paths) router.delete(p, stopServer);

  async function serverProgress(req: Request, res: Response): Promise<void> {
    const { user, server } = names(req);
    const row = await findServer(db, user, server);
    if (!row) throw notFound(`no server '${server || '(default)'}' for user '${user}'`);
    await streamProgress(req, res, row);
  }
  for (const p of paths.map((p) => `${p}/progress`)) router.get(p, serverProgress);

  async function streamProgress(req: Request, res: Response, row: ServerRow): Promise<void> {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream',
      'Cache-Control': 'no-cache',
      Connection: 'keep-alive',
      'X-Accel-Buffering': 'no',
    });
    const closed = new AbortController();
    req.on('close', () => closed.abort());
    const send = (data: object): void => {
      res.write(`data: ${JSON.stringify(data)}\n\n`);
    };
    let lastId = 0;
    let lastBeat = Date.now();
    while (!closed.signal.aborted) {
      const events = await serverEventsAfter(db, row.id, row.generation, lastId);
      const current = (await getServer(db, row.id)) ?? row;
      for (const e of events) {
        lastId = e.id;
        const payload: Record<string, unknown> = { progress: e.progress, message: e.message };
        if (e.ready) Object.assign(payload, { ready: true, url: current.url ?? undefined });
        if (e.failed) payload.failed = true;
        send(payload);
        if (e.ready || e.failed) return void res.end();
      }
      if (current.generation !== row.generation || current.state !== 'pending') {
        // Finished without a final event in this generation (e.g. stopped): say so and end.
        if (current.state === 'running') send({ progress: PROGRESS.done, message: progressText.ready(current.url), ready: true, url: current.url });
        else send({ progress: PROGRESS.done, message: current.message ?? progressText.ended(current.state), failed: true });
        return void res.end();
      }
      if (Date.now() - lastBeat > 15000) {
        res.write(': keep-alive\n\n');
        lastBeat = Date.now();
      }
      await notifier.wait(row.id, 500, closed.signal);
    }
    res.end();
  }

  return router;
}
