/**
 * Connection info for a new kernel: a fresh HMAC key and five ports (the local backend's connection
 * file itself is written by runtime-dir.ts, into the kernel's own directory).
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { z } from 'zod';
import type { KernelPorts } from '../../db';
import type { KernelConnectionInfo } from '../channels';

/** Ports kernels listen on inside their own pod/container (one kernel per network namespace). */
export const CONTAINER_KERNEL_PORTS: KernelPorts = { shell_port: 52317, iopub_port: 52318, stdin_port: 52319, control_port: 52320, hb_port: 52321 };

export function newKernelKey(): string {
  return randomBytes(32).toString('hex');
}

function canBind(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

/**
 * Hands out kernel ports on this host. A kernel binds its ports only when its process starts, so a
 * port that is free now can be given twice under concurrent launches: ports promised to kernels (the
 * `inUse` set, from the database) and ports being handed out in this process are never offered
 * again, and choices come from a range outside the kernel's ephemeral ports (which outgoing
 * connections take).
 */
export class PortAllocator {
  private readonly pending = new Set<number>();

  constructor(private readonly range: readonly [number, number], private readonly host = '127.0.0.1') {}

  /** Five free ports; call `release` once they are recorded (the database then protects them). */
  async allocate(inUse: ReadonlySet<number>): Promise<KernelPorts> {
    const [lo, hi] = this.range;
    const chosen: number[] = [];
    for (let tries = 0; chosen.length < 5; tries++) {
      if (tries > 2000) throw new Error(`no free kernel ports left in ${lo}-${hi}`);
      const port = lo + Math.floor(Math.random() * (hi - lo + 1));
      if (inUse.has(port) || this.pending.has(port) || chosen.includes(port)) continue;
      if (!(await canBind(this.host, port))) continue;
      if (this.pending.has(port)) continue;
      this.pending.add(port);
      chosen.push(port);
    }
    const [shell_port, iopub_port, stdin_port, control_port, hb_port] = chosen as [number, number, number, number, number];
    return { shell_port, iopub_port, stdin_port, control_port, hb_port };
  }

  release(ports: KernelPorts): void {
    for (const p of Object.values(ports)) this.pending.delete(p);
  }
}

export type KernelTransport = KernelConnectionInfo['transport'];

export function connectionInfo(host: string, ports: KernelPorts, key: string, kernelName: string, transport: KernelTransport = 'tcp'): KernelConnectionInfo {
  return { ip: host, transport, ...ports, key, signature_scheme: 'hmac-sha256', kernel_name: kernelName };
}

/** Removes `<dir>/kernel-<id>.json`, where earlier versions wrote TCP host kernels' connection files. */
export async function removeConnectionFile(dir: string, kernelId: string): Promise<void> {
  await fsp.rm(path.join(dir, `kernel-${kernelId}.json`), { force: true });
}

const PORT_FIELDS = { shell: 'shell_port', iopub: 'iopub_port', stdin: 'stdin_port', control: 'control_port', hb: 'hb_port' } as const;

/**
 * The ports spawngate connects to: a container backend that publishes ports reports the host ports
 * (`WorkloadState.ports`, by channel name), which differ from the ports the kernel listens on inside
 * its container. Backends that report nothing (or not all five) are reached at the kernel's own ports.
 */
export function reachedPorts(own: KernelPorts, reported: Record<string, number> | undefined): KernelPorts {
  const out = { ...own };
  for (const [channel, field] of Object.entries(PORT_FIELDS)) {
    const port = reported?.[channel];
    if (!(Number.isInteger(port) && port! > 0 && port! < 65536)) return own;
    out[field] = port!;
  }
  return out;
}

/** Key under which the reached ports are kept in the kernel row's `backend_ref`. */
export const REACHED_PORTS_KEY = 'reached_ports';
/** Key under which an ipc kernel's transport is kept in the kernel row's `backend_ref` (absent: tcp). */
export const TRANSPORT_KEY = 'transport';

/**
 * Key under which `backend_ref` records that the kernel's EG-style launcher reported (its ports, key
 * and communication address are then in the row), so a retried launch adopts instead of waiting for
 * a report that will not come again.
 */
export const LAUNCHER_REPORTED_KEY = 'launcher_reported';

/** Key under which an EG-style launcher's communication address is kept in `backend_ref`. */
export const LAUNCHER_COMM_KEY = 'launcher_comm';

const launcherCommSchema = z.object({ host: z.string(), port: z.number().int().min(1).max(65535) });

/** Where a kernel's launcher takes signal and shutdown requests, if it reported a communication port. */
export function launcherComm(row: { backend_ref: Record<string, unknown> | null }): { host: string; port: number } | undefined {
  const c = launcherCommSchema.safeParse(row.backend_ref?.[LAUNCHER_COMM_KEY]);
  return c.success ? c.data : undefined;
}

const recordedPortsSchema = z.object({ shell_port: z.number().int(), iopub_port: z.number().int(), stdin_port: z.number().int(), control_port: z.number().int(), hb_port: z.number().int() });

/**
 * Where a kernel recorded in the database is reached: its host (an ipc kernel's socket prefix) and the
 * reached ports (else its own); `transport` only for ipc kernels.
 */
export function kernelAddress(row: { host: string | null; ports: KernelPorts; backend_ref: Record<string, unknown> | null }): { host: string; ports: KernelPorts; transport?: 'ipc' } {
  const recorded = recordedPortsSchema.safeParse(row.backend_ref?.[REACHED_PORTS_KEY]);
  const address = { host: row.host ?? '127.0.0.1', ports: recorded.success ? recorded.data : row.ports };
  return row.backend_ref?.[TRANSPORT_KEY] === 'ipc' ? { ...address, transport: 'ipc' } : address;
}
