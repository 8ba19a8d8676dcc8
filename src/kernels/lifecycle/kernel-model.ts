/** The Enterprise Gateway / jupyter_server kernel model. */
import type { KernelRow } from '../../db';

export interface KernelModel {
  id: string;
  name: string;
  last_activity: string;
  execution_state: string;
  connections: number;
}

/** `YYYY-MM-DDTHH:MM:SS.ffffffZ`, as jupyter_server's isoformat + Z produces. */
export function jupyterTimestamp(d: Date): string {
  return `${d.toISOString().slice(0, 23)}000Z`;
}

export function toKernelModel(row: KernelRow): KernelModel {
  const dead = row.state === 'dead' || row.state === 'failed' || row.state === 'terminated';
  return {
    id: row.id,
    name: row.kernel_name,
    last_activity: jupyterTimestamp(new Date(row.last_activity)),
    execution_state: dead ? 'dead' : row.state === 'restarting' ? 'restarting' : row.execution_state,
    connections: Math.max(0, Math.trunc(row.connections)),
  };
}
