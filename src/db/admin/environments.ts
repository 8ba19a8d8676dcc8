/** Environments repository: environment → experiment registrations. */
import type { Queryable } from '../types';

export interface EnvironmentRecord {
  name: string;
  experiment: string;
  experiment_active: boolean;
}

const SELECT = `SELECT env.name, e.name AS experiment, e.active AS experiment_active
  FROM environments env JOIN experiments e ON e.id = env.experiment_id`;

export function selectEnvironments(q: Queryable, opts: { experiment?: string } = {}): Promise<EnvironmentRecord[]> {
  return q.query<EnvironmentRecord>(`${SELECT} WHERE $1::text IS NULL OR e.name = $1 ORDER BY env.name`, [opts.experiment ?? null]);
}

export async function selectEnvironment(q: Queryable, name: string): Promise<EnvironmentRecord | undefined> {
  const [row] = await q.query<EnvironmentRecord>(`${SELECT} WHERE env.name = $1`, [name]);
  return row;
}

export async function insertEnvironment(q: Queryable, name: string, experimentId: number): Promise<void> {
  await q.query('INSERT INTO environments (name, experiment_id) VALUES ($1, $2)', [name, experimentId]);
}

/** False when no environment has that name. */
export async function moveEnvironment(q: Queryable, name: string, experimentId: number): Promise<boolean> {
  return (await q.query('UPDATE environments SET experiment_id = $2 WHERE name = $1 RETURNING id', [name, experimentId])).length > 0;
}

/** False when no environment has that name. */
export async function deleteEnvironmentRow(q: Queryable, name: string): Promise<boolean> {
  return (await q.query('DELETE FROM environments WHERE name = $1 RETURNING id', [name])).length > 0;
}
