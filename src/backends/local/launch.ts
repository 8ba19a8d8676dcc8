/**
 * Turning a `WorkloadSpec` into an exec for the local backend: free ports, `{port}` substitution,
 * the child's environment, resolving the executable (so "command not found" is a clear permanent error
 * rather than an exit status), and resource limits.
 *
 * Resource limits on a plain local process:
 * - `memoryLimitMiB` is applied as RLIMIT_AS (virtual address space) through util-linux `prlimit`, when
 *   that binary exists. It is per process (inherited by children, not a total for the tree) and
 *   counts address space rather than resident memory: an allocation beyond it fails (Python raises
 *   MemoryError, malloc returns NULL) instead of the process being OOM-killed. Runtimes that reserve
 *   large address ranges up front (JVM, Go, V8 with WebAssembly) may need a generous limit.
 * - `cpuRequest`, `cpuLimit`, `memoryRequestMiB` and `gpuLimit` are not enforced locally (that needs
 *   cgroups, which an unprivileged service cannot rely on); they are listed under `notApplied`.
 * Nothing here fails because a limit cannot be applied; what happened is recorded in the state's ref.
 */
import { statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { PermanentBackendError, TransientBackendError, type WorkloadResources, type WorkloadSpec } from '../types';
import type { AppliedLimits } from './records';
import { substitutePorts } from '../port-placeholders';
import { workingDirIn, type RunAs } from './identity';
import { findTool, resolveExecutable } from './executables';

const FALLBACK_PATH = '/usr/local/bin:/usr/bin:/bin';

/**
 * Ports this backend handed out recently. A port picked with bind(0) is free only until the listener
 * used to pick it closes; until the workload binds it, the OS may give the same number to the next
 * bind(0) — and two servers then race for one port (the loser fails, and a readiness check would
 * reach the winner). Handed-out ports are therefore not offered again for `holdMs`.
 */
export class RecentPorts {
  private readonly until = new Map<number, number>();

  constructor(private readonly holdMs = 5 * 60_000) {}

  has(port: number, now = Date.now()): boolean {
    const t = this.until.get(port);
    if (t === undefined) return false;
    if (t > now) return true;
    this.until.delete(port);
    return false;
  }

  add(port: number, now = Date.now()): void {
    this.until.set(port, now + this.holdMs);
    if (this.until.size > 4096) for (const [p, t] of this.until) if (t <= now) this.until.delete(p);
  }
}

/**
 * Resolves `spec.ports`: 0 means "pick a free port on `host`", anything else is used as given.
 * All listeners are held open until every port is chosen, so the ports of one spec are distinct, and
 * a port in `recent` is skipped (its listener stays open too, so the OS offers another).
 */
export async function resolvePorts(
  ports: Record<string, number> | undefined,
  host: string,
  recent: RecentPorts = new RecentPorts(),
): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const servers: net.Server[] = [];
  const listen = async (): Promise<number> => {
    const server = net.createServer();
    servers.push(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port: 0, exclusive: true }, resolve);
    });
    return (server.address() as net.AddressInfo).port;
  };
  try {
    for (const [name, value] of Object.entries(ports ?? {})) {
      if (value === 0) {
        let port = await listen();
        for (let tries = 1; recent.has(port); tries++) {
          if (tries >= 50) throw new TransientBackendError(`no free port on ${host} that was not handed out recently`);
          port = await listen();
        }
        recent.add(port);
        out[name] = port;
      } else if (Number.isInteger(value) && value > 0 && value < 65536) {
        out[name] = value;
      } else {
        throw new PermanentBackendError(
          `invalid port ${JSON.stringify(value)} for "${name}": use 0 to pick one, or 1-65535`,
        );
      }
    }
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
  return out;
}

/** Exactly `spec.env` (ports substituted), plus the service's PATH when the spec has none. */
export function buildEnv(env: Record<string, string>, ports: Record<string, number>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) out[k] = substitutePorts(v, ports);
  if (out.PATH === undefined) out.PATH = process.env.PATH ?? FALLBACK_PATH;
  return out;
}

/** The working directory, checked up front (spawn would report a missing one as ENOENT of the command). */
export function resolveWorkingDir(workingDir: string | undefined): string {
  const dir = path.resolve(workingDir ?? process.cwd());
  let ok: boolean;
  try {
    ok = statSync(dir).isDirectory();
  } catch {
    ok = false;
  }
  if (!ok) throw new PermanentBackendError(`working directory does not exist: ${dir}`);
  return dir;
}

export const findPrlimit = (): string | undefined => findTool('prlimit');

export interface LimitedExec {
  file: string;
  args: string[];
  limits: AppliedLimits;
}

/** Wraps the exec in `prlimit --as` when a memory limit is asked for and prlimit is available. */
export function applyLimits(
  file: string,
  args: string[],
  resources: WorkloadResources | undefined,
  prlimit: string | undefined,
): LimitedExec {
  const limits: AppliedLimits = { applied: [], notApplied: [] };
  const r = resources ?? {};
  let exec = { file, args };
  if (r.memoryLimitMiB !== undefined) {
    if (prlimit && Number.isFinite(r.memoryLimitMiB) && r.memoryLimitMiB > 0) {
      const bytes = Math.floor(r.memoryLimitMiB * 1024 * 1024);
      exec = { file: prlimit, args: [`--as=${bytes}`, '--', file, ...args] };
      limits.applied.push(
        `memoryLimitMiB=${r.memoryLimitMiB} as RLIMIT_AS (virtual address space, per process)`,
      );
    } else {
      limits.notApplied.push(`memoryLimitMiB=${r.memoryLimitMiB}: prlimit (util-linux) not available`);
    }
  }
  if (r.memoryRequestMiB !== undefined)
    limits.notApplied.push(`memoryRequestMiB=${r.memoryRequestMiB}: requests mean nothing locally`);
  if (r.cpuRequest !== undefined)
    limits.notApplied.push(`cpuRequest=${r.cpuRequest}: requests mean nothing locally`);
  if (r.cpuLimit !== undefined)
    limits.notApplied.push(`cpuLimit=${r.cpuLimit}: CPU is not limited by the local backend`);
  if (r.gpuLimit)
    limits.notApplied.push(`gpuLimit=${r.gpuLimit}: GPUs are not isolated by the local backend`);
  return { ...exec, limits };
}

/**
 * Everything `spawn` needs, computed from the spec; throws PermanentBackendError for a bad spec. With a
 * user's identity (`runAs.home`), HOME is that home and the working directory lies inside it.
 */
export async function prepareLaunch(
  spec: WorkloadSpec,
  host: string,
  prlimit: string | undefined,
  recent: RecentPorts | undefined,
  runAs: RunAs,
) {
  if (!Array.isArray(spec.command) || spec.command.length === 0 || !spec.command[0]) {
    throw new PermanentBackendError(`workload ${spec.name}: command is empty`);
  }
  const ports = await resolvePorts(spec.ports, host, recent);
  const argv = spec.command.map((a) => substitutePorts(a, ports));
  const env = buildEnv(spec.env ?? {}, ports);
  if (runAs.home) env.HOME = runAs.home;
  const cwd = resolveWorkingDir(runAs.home ? workingDirIn(runAs.home, spec.workingDir) : spec.workingDir);
  const file = resolveExecutable(argv[0]!, env.PATH!, cwd);
  const exec = applyLimits(file, argv.slice(1), spec.resources, prlimit);
  return { ports, argv, env, cwd, ...exec };
}
