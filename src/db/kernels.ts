/** Repository for gateway kernels and their launch audit. */
import type { Queryable } from './types';

export type KernelState = 'starting' | 'running' | 'restarting' | 'dead' | 'terminated' | 'failed';
export const LIVE_KERNEL_STATES: KernelState[] = ['starting', 'running', 'restarting', 'dead'];

export interface KernelPorts {
  shell_port: number;
  iopub_port: number;
  stdin_port: number;
  control_port: number;
  hb_port: number;
}

export interface KernelLimits {
  cpu_request?: number;
  cpu_limit?: number;
  memory_request_mib?: number;
  memory_limit_mib?: number;
  gpu_limit?: number;
}

export interface KernelRow {
  id: string;
  username: string;
  kernel_name: string;
  environment: string | null;
  experiment_id: number | null;
  experiment_name: string | null;
  limits: KernelLimits;
  backend: string;
  workload_name: string;
  state: KernelState;
  host: string | null;
  ports: KernelPorts;
  key_ciphertext: string;
  signature_scheme: string;
  interrupt_mode: 'signal' | 'message';
  execution_state: string;
  connections: number;
  last_activity: Date;
  message: string | null;
  backend_ref: Record<string, unknown> | null;
  launch: KernelLaunch;
  created_at: Date;
}

/** What a restart runs again. */
export interface KernelLaunch {
  argv: string[];
  env: Record<string, string>;
  workingDir?: string;
  image?: string;
}

/** How long a replica's connection count stays valid without a refresh (replicas refresh every few s). */
export const CONNECTION_TTL_SECONDS = 15;

const COLUMNS = `id::text AS id, username, kernel_name, environment, experiment_id::int AS experiment_id, experiment_name,
  limits, backend, workload_name, state, host, ports, key_ciphertext, signature_scheme, interrupt_mode,
  execution_state,
  (SELECT COALESCE(sum(c.connections), 0) FROM kernel_connections c
    WHERE c.kernel_id = kernels.id AND c.seen_at > now() - make_interval(secs => ${CONNECTION_TTL_SECONDS}))::int AS connections,
  last_activity, message, backend_ref, launch, created_at`;

export async function insertKernel(
  q: Queryable,
  k: Pick<KernelRow, 'id' | 'username' | 'kernel_name' | 'environment' | 'experiment_id' | 'experiment_name' | 'limits' | 'backend' | 'workload_name' | 'ports' | 'key_ciphertext' | 'interrupt_mode' | 'launch'>,
): Promise<KernelRow> {
  const rows = await q.query<KernelRow>(
    `INSERT INTO kernels (id, username, kernel_name, environment, experiment_id, experiment_name, limits, backend,
                          workload_name, state, ports, key_ciphertext, interrupt_mode, launch)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'starting', $10, $11, $12, $13)
     RETURNING ${COLUMNS}`,
    [k.id, k.username, k.kernel_name, k.environment, k.experiment_id, k.experiment_name, JSON.stringify(k.limits), k.backend,
      k.workload_name, JSON.stringify(k.ports), k.key_ciphertext, k.interrupt_mode, JSON.stringify(k.launch)],
  );
  return rows[0]!;
}

export async function getKernel(q: Queryable, id: string): Promise<KernelRow | undefined> {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) return undefined;
  const rows = await q.query<KernelRow>(`SELECT ${COLUMNS} FROM kernels WHERE id = $1`, [id]);
  return rows[0];
}

export async function listKernels(q: Queryable, opts: { username?: string; states?: KernelState[] } = {}): Promise<KernelRow[]> {
  return q.query<KernelRow>(
    `SELECT ${COLUMNS} FROM kernels
     WHERE ($1::text IS NULL OR username = $1) AND state = ANY($2::text[])
     ORDER BY created_at`,
    [opts.username ?? null, opts.states ?? LIVE_KERNEL_STATES],
  );
}

/**
 * Live kernels of a user and of an experiment, launches in flight included, and the user's launches in
 * flight alone (for fair-share limits). Call under `lockKernelLaunches` to count race-free.
 */
export async function countLiveKernels(q: Queryable, username: string, experimentId: number | null): Promise<{ user: number; userStarting: number; experiment: number }> {
  const rows = await q.query<{ user: number; userStarting: number; experiment: number }>(
    `SELECT count(*) FILTER (WHERE username = $1)::int AS user,
            count(*) FILTER (WHERE username = $1 AND state = 'starting')::int AS "userStarting",
            count(*) FILTER (WHERE $2::bigint IS NOT NULL AND experiment_id = $2)::int AS experiment
     FROM kernels WHERE state IN ('starting', 'running', 'restarting') AND (username = $1 OR experiment_id = $2)`,
    [username, experimentId],
  );
  return rows[0] ?? { user: 0, userStarting: 0, experiment: 0 };
}

/**
 * Serializes kernel launches of one user (and of one experiment) until the transaction ends, so that
 * counting live kernels and inserting the new one happen as one step across replicas.
 */
export async function lockKernelLaunches(q: Queryable, username: string, experimentId: number | null): Promise<void> {
  await q.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`kernels:${username}`]);
  if (experimentId !== null) await q.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`kernels:experiment:${experimentId}`]);
}

export async function updateKernel(
  q: Queryable,
  id: string,
  fields: Partial<Pick<KernelRow, 'state' | 'host' | 'message' | 'backend_ref' | 'execution_state'>> & { from?: KernelState[] },
): Promise<KernelRow | undefined> {
  const rows = await q.query<KernelRow>(
    `UPDATE kernels SET
       state = COALESCE($2, state),
       host = CASE WHEN $3::boolean THEN $4 ELSE host END,
       message = CASE WHEN $5::boolean THEN $6 ELSE message END,
       backend_ref = CASE WHEN $7::boolean THEN $8::jsonb ELSE backend_ref END,
       execution_state = COALESCE($9, execution_state),
       stopped_at = CASE WHEN $2 IN ('terminated', 'failed') THEN now() ELSE stopped_at END,
       updated_at = now()
     WHERE id = $1 AND ($10::text[] IS NULL OR state = ANY($10::text[]))
     RETURNING ${COLUMNS}`,
    [
      id,
      fields.state ?? null,
      fields.host !== undefined,
      fields.host ?? null,
      fields.message !== undefined,
      fields.message ?? null,
      fields.backend_ref !== undefined,
      fields.backend_ref ? JSON.stringify(fields.backend_ref) : null,
      fields.execution_state ?? null,
      fields.from ?? null,
    ],
  );
  return rows[0];
}

/**
 * Activity from one replica's bridge: execution state, last activity, and this replica's current number
 * of websockets on the kernel (refreshed even when unchanged, so it stays valid).
 */
export async function recordKernelActivity(
  q: Queryable,
  id: string,
  a: { replicaId: string; connections: number; executionState?: string; lastActivity?: Date },
): Promise<void> {
  await q.query(
    `WITH k AS (
       UPDATE kernels SET execution_state = COALESCE($2, execution_state),
         last_activity = GREATEST(last_activity, COALESCE($3, last_activity))
       WHERE id = $1 RETURNING id
     )
     INSERT INTO kernel_connections (kernel_id, replica_id, connections, seen_at)
     SELECT id, $4, $5, now() FROM k
     ON CONFLICT (kernel_id, replica_id) DO UPDATE SET connections = EXCLUDED.connections, seen_at = now()`,
    [id, a.executionState ?? null, a.lastActivity ?? null, a.replicaId, Math.max(0, a.connections)],
  );
}

export async function recordLaunch(
  q: Queryable,
  l: { kernelId: string; username: string; kernelName: string; environment: string | null; experimentName: string | null; limits: KernelLimits; outcome: string; message?: string },
): Promise<void> {
  await q.query(
    `INSERT INTO kernel_launches (kernel_id, username, kernel_name, environment, experiment_name, limits, outcome, message)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
    [l.kernelId, l.username, l.kernelName, l.environment, l.experimentName, JSON.stringify(l.limits), l.outcome, l.message ?? null],
  );
}

/** New ports for a kernel still starting (its first choice was taken before it could bind). */
export async function updateKernelPorts(q: Queryable, id: string, ports: KernelPorts): Promise<void> {
  await q.query(`UPDATE kernels SET ports = $2, updated_at = now() WHERE id = $1 AND state = 'starting'`, [id, JSON.stringify(ports)]);
}

/** The HMAC key a kernel's own launcher chose (EG's response-address launchers pick theirs). */
export async function updateKernelKey(q: Queryable, id: string, keyCiphertext: string): Promise<void> {
  await q.query(`UPDATE kernels SET key_ciphertext = $2, updated_at = now() WHERE id = $1`, [id, keyCiphertext]);
}

/** Every port held or about to be bound by a live kernel on this backend. */
export async function livePorts(q: Queryable, backend: string): Promise<Set<number>> {
  const rows = await q.query<{ ports: KernelPorts }>(
    `SELECT ports FROM kernels WHERE backend = $1 AND state IN ('starting', 'running', 'restarting', 'dead')`,
    [backend],
  );
  const out = new Set<number>();
  for (const r of rows) for (const p of Object.values(r.ports)) out.add(p);
  return out;
}
