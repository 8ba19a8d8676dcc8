/**
 * Which client-supplied variables may reach a kernel. jupyter_server 1.23 sends its whole process
 * environment (JUPYTERHUB_API_TOKEN included) as the kernel env: only `KERNEL_*` names and the
 * configured allow-list pass, as strings of bounded size. Values are never logged; dropped names are.
 */
import { KernelRequestError } from './errors';

const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
export const MAX_VALUE_BYTES = 8 * 1024;
export const MAX_VARIABLES = 200;

/** Names spawngate sets itself; a client value for them is ignored. */
const RESERVED = new Set(['KERNEL_ID', 'KERNEL_USERNAME', 'KERNEL_CPUS', 'KERNEL_MEMORY', 'KERNEL_GPUS', 'KERNEL_CPUS_LIMIT', 'KERNEL_MEMORY_LIMIT', 'KERNEL_GPUS_LIMIT']);

export interface FilteredEnv {
  env: Record<string, string>;
  /** Names that were dropped (not KERNEL_*, not allow-listed, or reserved). */
  dropped: string[];
}

export function filterKernelEnv(raw: unknown, allowlist: readonly string[]): FilteredEnv {
  if (raw === undefined || raw === null) return { env: {}, dropped: [] };
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new KernelRequestError("'env' must be an object of strings");
  const env: Record<string, string> = {};
  const dropped: string[] = [];
  for (const [name, value] of Object.entries(raw as Record<string, unknown>)) {
    const wanted = (name.startsWith('KERNEL_') || allowlist.includes(name)) && !RESERVED.has(name);
    if (!wanted || !NAME.test(name)) {
      dropped.push(name.slice(0, 128));
      continue;
    }
    if (typeof value !== 'string') throw new KernelRequestError(`env.${name} must be a string`);
    if (Buffer.byteLength(value) > MAX_VALUE_BYTES) throw new KernelRequestError(`env.${name} is longer than ${MAX_VALUE_BYTES} bytes`);
    env[name] = value;
  }
  if (Object.keys(env).length > MAX_VARIABLES) throw new KernelRequestError(`more than ${MAX_VARIABLES} KERNEL_* variables`);
  return { env, dropped };
}

/** `KERNEL_LAUNCH_TIMEOUT` (seconds, as EG reads it) bounded to [1, max]; undefined when absent. */
export function launchTimeoutFrom(env: Record<string, string>, maxSeconds: number): number | undefined {
  const v = env.KERNEL_LAUNCH_TIMEOUT;
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new KernelRequestError(`KERNEL_LAUNCH_TIMEOUT must be a positive number of seconds, got '${v.slice(0, 32)}'`);
  return Math.min(n, maxSeconds);
}
