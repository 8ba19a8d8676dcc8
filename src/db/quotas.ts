/**
 * The quota decision of DESIGN §4, read from the admin tables (users, experiments, environments,
 * experiment_members) in one query per launch, so an administrator's committed change applies to the
 * next launch. Only reads; what to do with each outcome (refuse, default profile) is the caller's.
 */
import type { Queryable } from './types';

export interface ExperimentQuota {
  id: number;
  name: string;
  /** Cores. */
  cpu_request: number;
  /** Cores. */
  cpu_limit: number;
  memory_request_mib: number;
  memory_limit_mib: number;
  gpu_limit: number;
}

/**
 * - `granted`: the environment's experiment is active and the user is an active member.
 * - `unregistered`: no environment of that name exists (policy decides: deny or default profile).
 * - `inactive-experiment`: the experiment has `active = false`.
 * - `not-member`: the user is unknown or not in experiment_members for this experiment.
 * - `inactive-user`: the user is a member but has `active = false`.
 */
export type QuotaResolution =
  | { kind: 'granted'; experiment: ExperimentQuota }
  | { kind: 'unregistered' }
  | { kind: 'inactive-experiment'; experiment: ExperimentQuota }
  | { kind: 'not-member'; experiment: ExperimentQuota }
  | { kind: 'inactive-user'; experiment: ExperimentQuota };

interface Row {
  id: number | string;
  name: string;
  cpu_request: string | number;
  cpu_limit: string | number;
  memory_request_mib: number;
  memory_limit_mib: number;
  gpu_limit: number;
  experiment_active: boolean;
  user_active: boolean | null;
  is_member: boolean;
}

const RESOLVE_SQL = `
SELECT e.id, e.name, e.cpu_request, e.cpu_limit, e.memory_request_mib, e.memory_limit_mib, e.gpu_limit,
       e.active AS experiment_active,
       u.active AS user_active,
       (m.user_id IS NOT NULL) AS is_member
  FROM environments env
  JOIN experiments e ON e.id = env.experiment_id
  LEFT JOIN users u ON u.username = $1
  LEFT JOIN experiment_members m ON m.experiment_id = e.id AND m.user_id = u.id
 WHERE env.name = $2`;

/** Which experiment's limits apply to `username` launching in `environment`, or why none do. */
export async function resolveQuota(
  q: Queryable,
  input: { username: string; environment: string },
): Promise<QuotaResolution> {
  const [row] = await q.query<Row>(RESOLVE_SQL, [input.username, input.environment]);
  if (!row) return { kind: 'unregistered' };
  const experiment: ExperimentQuota = {
    id: Number(row.id),
    name: row.name,
    cpu_request: Number(row.cpu_request), // NUMERIC arrives as a string
    cpu_limit: Number(row.cpu_limit),
    memory_request_mib: Number(row.memory_request_mib),
    memory_limit_mib: Number(row.memory_limit_mib),
    gpu_limit: Number(row.gpu_limit),
  };
  if (!row.experiment_active) return { kind: 'inactive-experiment', experiment };
  if (!row.is_member) return { kind: 'not-member', experiment };
  if (row.user_active !== true) return { kind: 'inactive-user', experiment };
  return { kind: 'granted', experiment };
}

/** Names of every experiment, oldest first (the kubernetes backend watches their namespaces). */
export async function listExperimentNames(db: Queryable): Promise<string[]> {
  return (await db.query<{ name: string }>('SELECT name FROM experiments ORDER BY id')).map((r) => r.name);
}
