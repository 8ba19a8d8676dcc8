/**
 * Repository for single-user servers and their progress events. One row per (user, server name) holds
 * the current incarnation; `generation` increases with each start so stale jobs can tell they lost.
 */
import { newToken } from './tokens';
import type { Queryable } from './types';

export type ServerState = 'pending' | 'running' | 'stopping' | 'stopped' | 'failed';

export interface ServerRow {
  id: number;
  username: string;
  server_name: string;
  workload_name: string;
  backend: string;
  profile: string | null;
  state: ServerState;
  generation: number;
  url: string | null;
  message: string | null;
  exit_code: number | null;
  backend_ref: Record<string, unknown> | null;
  user_options: Record<string, unknown>;
  last_output: string[] | null;
  requested_at: Date;
  started_at: Date | null;
  stopped_at: Date | null;
}

export interface ServerEventRow {
  id: number;
  progress: number;
  message: string;
  failed: boolean;
  ready: boolean;
}

const COLUMNS = `id::int AS id, username, server_name, workload_name, backend, profile, state, generation, url, message,
  exit_code, backend_ref, user_options, last_output, requested_at, started_at, stopped_at`;

export async function findServer(q: Queryable, username: string, serverName: string): Promise<ServerRow | undefined> {
  const rows = await q.query<ServerRow>(
    `SELECT ${COLUMNS} FROM servers WHERE username = $1 AND server_name = $2`,
    [username, serverName],
  );
  return rows[0];
}

export async function getServer(q: Queryable, id: number): Promise<ServerRow | undefined> {
  const rows = await q.query<ServerRow>(`SELECT ${COLUMNS} FROM servers WHERE id = $1`, [id]);
  return rows[0];
}

export async function listServers(q: Queryable, username?: string): Promise<ServerRow[]> {
  return username === undefined
    ? q.query<ServerRow>(`SELECT ${COLUMNS} FROM servers ORDER BY username, server_name`)
    : q.query<ServerRow>(`SELECT ${COLUMNS} FROM servers WHERE username = $1 ORDER BY server_name`, [username]);
}

export async function listActiveServers(q: Queryable): Promise<ServerRow[]> {
  return q.query<ServerRow>(`SELECT ${COLUMNS} FROM servers WHERE state IN ('pending', 'running', 'stopping')`);
}

/**
 * Serializes server starts of one user until the transaction ends, so that counting the user's servers
 * and claiming a new one happen as one step across replicas.
 */
export async function lockUserServers(q: Queryable, username: string): Promise<void> {
  await q.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`servers:${username}`]);
}

/** A user's servers that are pending, running or stopping (`live`), and those pending alone. */
export async function countUserServers(q: Queryable, username: string): Promise<{ live: number; pending: number }> {
  const rows = await q.query<{ live: number; pending: number }>(
    `SELECT count(*)::int AS live, count(*) FILTER (WHERE state = 'pending')::int AS pending
     FROM servers WHERE username = $1 AND state IN ('pending', 'running', 'stopping')`,
    [username],
  );
  return rows[0] ?? { live: 0, pending: 0 };
}

/**
 * Claims (user, server name) for a new start. Returns the row and whether this call started a new
 * generation; an existing pending/running/stopping row is returned unchanged (the idempotent path).
 * A new generation takes `workloadName` as given; a live row keeps the name its workload was created
 * with, so a workload named by an earlier naming scheme is still found until it stops.
 */
export async function claimServerStart(
  q: Queryable,
  input: {
    username: string;
    serverName: string;
    workloadName: string;
    backend: string;
    profile: string;
    userOptions: Record<string, unknown>;
  },
): Promise<{ row: ServerRow; created: boolean }> {
  // The WHERE on the upsert leaves live rows untouched, so two concurrent starts cannot both win.
  // One round trip: claim, drop the previous generations' progress, record the first event.
  const rows = await q.query<ServerRow>(
    `WITH claimed AS (
       INSERT INTO servers (username, server_name, workload_name, backend, profile, state, user_options)
       VALUES ($1, $2, $3, $4, $5, 'pending', $6)
       ON CONFLICT (username, server_name) DO UPDATE
         SET state = 'pending', generation = servers.generation + 1, workload_name = EXCLUDED.workload_name, backend = EXCLUDED.backend,
             profile = EXCLUDED.profile, user_options = EXCLUDED.user_options, url = NULL, message = NULL,
             exit_code = NULL, last_output = NULL, backend_ref = NULL, requested_at = now(), started_at = NULL,
             stopped_at = NULL, updated_at = now()
         WHERE servers.state IN ('stopped', 'failed')
       RETURNING *
     ), pruned AS (
       DELETE FROM server_events e USING claimed c WHERE e.server_id = c.id AND e.generation < c.generation
     ), first_event AS (
       INSERT INTO server_events (server_id, generation, progress, message)
       SELECT id, generation, 0, 'Server requested' FROM claimed
     )
     SELECT ${COLUMNS} FROM claimed`,
    [input.username, input.serverName, input.workloadName, input.backend, input.profile, JSON.stringify(input.userOptions)],
  );
  if (rows[0]) return { row: rows[0], created: true };
  const existing = await findServer(q, input.username, input.serverName);
  if (!existing) throw new Error('server row vanished during claim');
  return { row: existing, created: false };
}

/**
 * Moves a server to a new state only if it is still at `generation` and in one of `from`; returns the
 * updated row, or undefined when another actor got there first.
 */
export async function transitionServer(
  q: Queryable,
  id: number,
  generation: number,
  from: ServerState[],
  to: ServerState,
  fields: {
    url?: string | null;
    message?: string | null;
    exitCode?: number | null;
    backendRef?: Record<string, unknown> | null;
    lastOutput?: string[] | null;
  } = {},
): Promise<ServerRow | undefined> {
  const rows = await q.query<ServerRow>(
    `UPDATE servers SET state = $4,
       url = CASE WHEN $5::boolean THEN $6 ELSE url END,
       message = CASE WHEN $7::boolean THEN $8 ELSE message END,
       exit_code = CASE WHEN $9::boolean THEN $10::int ELSE exit_code END,
       backend_ref = CASE WHEN $11::boolean THEN $12::jsonb ELSE backend_ref END,
       last_output = CASE WHEN $13::boolean THEN $14::jsonb ELSE last_output END,
       started_at = CASE WHEN $4 = 'running' THEN now() ELSE started_at END,
       stopped_at = CASE WHEN $4 IN ('stopped', 'failed') THEN now() ELSE stopped_at END,
       updated_at = now()
     WHERE id = $1 AND generation = $2 AND state = ANY($3::text[])
     RETURNING ${COLUMNS}`,
    [
      id,
      generation,
      from,
      to,
      fields.url !== undefined,
      fields.url ?? null,
      fields.message !== undefined,
      fields.message ?? null,
      fields.exitCode !== undefined,
      fields.exitCode ?? null,
      fields.backendRef !== undefined,
      fields.backendRef === undefined || fields.backendRef === null ? null : JSON.stringify(fields.backendRef),
      fields.lastOutput !== undefined,
      fields.lastOutput === undefined || fields.lastOutput === null ? null : JSON.stringify(fields.lastOutput),
    ],
  );
  return rows[0];
}

export async function addServerEvent(
  q: Queryable,
  serverId: number,
  generation: number,
  event: { progress: number; message: string; failed?: boolean; ready?: boolean },
): Promise<void> {
  await q.query(
    `INSERT INTO server_events (server_id, generation, progress, message, failed, ready) VALUES ($1, $2, $3, $4, $5, $6)`,
    [serverId, generation, Math.max(0, Math.min(100, Math.round(event.progress))), event.message.slice(0, 2000), !!event.failed, !!event.ready],
  );
}

export async function serverEventsAfter(
  q: Queryable,
  serverId: number,
  generation: number,
  afterId: number,
): Promise<ServerEventRow[]> {
  return q.query<ServerEventRow>(
    `SELECT id::int AS id, progress, message, failed, ready FROM server_events
     WHERE server_id = $1 AND generation = $2 AND id > $3 ORDER BY id`,
    [serverId, generation, afterId],
  );
}

export async function findServerByWorkload(q: Queryable, workloadName: string): Promise<ServerRow | undefined> {
  const rows = await q.query<ServerRow>(`SELECT ${COLUMNS} FROM servers WHERE workload_name = $1`, [workloadName]);
  return rows[0];
}

/**
 * The first step of a start job, in one round trip: checks the row is still pending at `generation`
 * (a stale or duplicated job gets undefined and must do nothing), revokes the server's previous
 * tokens and mints its gateway token. Returns the row and the token's plaintext.
 */
export async function beginServerStart(
  q: Queryable,
  serverId: number,
  generation: number,
): Promise<{ row: ServerRow; token: string } | undefined> {
  const { token, hash } = newToken();
  const rows = await q.query<ServerRow>(
    `WITH s AS (
       SELECT * FROM servers WHERE id = $1 AND generation = $2 AND state = 'pending'
     ), revoked AS (
       UPDATE api_tokens SET revoked_at = now() WHERE server_id IN (SELECT id FROM s) AND revoked_at IS NULL
     ), minted AS (
       INSERT INTO api_tokens (token_hash, username, kind, server_id, note)
       SELECT $3, username, 'gateway', id, 'single-user server' FROM s
     )
     SELECT ${COLUMNS} FROM s`,
    [serverId, generation, hash],
  );
  return rows[0] ? { row: rows[0], token } : undefined;
}
