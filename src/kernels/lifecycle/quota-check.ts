/**
 * Environment → experiment → membership → limits, with messages a person can act on. Admin changes
 * apply at the next launch: every launch asks the database again.
 */
import { MIN_CPU_CORES, type Config } from '../../config';
import { resolveQuota, type KernelLimits, type Queryable } from '../../db';
import { KernelQuotaError } from './errors';

export interface Grant {
  experimentId: number | null;
  experimentName: string | null;
  limits: KernelLimits;
}

export async function grantFor(q: Queryable, config: Config, username: string, environment: string | null, kernelName: string): Promise<Grant> {
  const result = environment === null ? ({ kind: 'unregistered' } as const) : await resolveQuota(q, { username, environment });
  const envLabel = environment === null ? `kernel '${kernelName}' (no environment)` : `environment '${environment}'`;
  switch (result.kind) {
    case 'granted': {
      const e = result.experiment;
      // Rows from before migration 018 may hold less than 1m, which a pod would get as 0m: no limit.
      if (Number(e.cpu_request) < MIN_CPU_CORES || Number(e.cpu_limit) < MIN_CPU_CORES) {
        throw new KernelQuotaError(
          `experiment '${e.name}' (${envLabel}) has cpu_request ${e.cpu_request} / cpu_limit ${e.cpu_limit} cores; both must be at least ${MIN_CPU_CORES} (1m): ask an administrator to raise them`,
        );
      }
      return {
        experimentId: e.id,
        experimentName: e.name,
        limits: {
          cpu_request: e.cpu_request,
          cpu_limit: e.cpu_limit,
          memory_request_mib: e.memory_request_mib,
          memory_limit_mib: e.memory_limit_mib,
          gpu_limit: e.gpu_limit,
        },
      };
    }
    case 'unregistered': {
      const policy = config.file.kernels.unregistered_environments;
      if (policy === 'deny') {
        throw new KernelQuotaError(`${envLabel} is not registered to any experiment; ask an administrator to add it (environments table)`, 'unregistered_environment');
      }
      const profile = config.file.profiles.find((p) => p.slug === policy.profile);
      if (!profile) throw new KernelQuotaError(`${envLabel} is not registered and the default profile '${policy.profile}' does not exist`, 'unregistered_environment');
      return { experimentId: null, experimentName: null, limits: { ...profile.resources } };
    }
    case 'inactive-experiment':
      throw new KernelQuotaError(`${envLabel} belongs to experiment '${result.experiment.name}', which is not active`, 'inactive_experiment');
    case 'not-member':
      throw new KernelQuotaError(`user '${username}' is not a member of experiment '${result.experiment.name}', which ${envLabel} belongs to`, 'not_member');
    case 'inactive-user':
      throw new KernelQuotaError(`user '${username}' is deactivated; experiment '${result.experiment.name}' (${envLabel}) cannot be used`, 'inactive_user');
  }
}

/** EG's resource variables for kernel images: requests as KERNEL_CPUS/MEMORY/GPUS, limits as *_LIMIT. */
export function limitVariables(l: KernelLimits): Record<string, string> {
  const out: Record<string, string> = {};
  if (l.cpu_request !== undefined) out.KERNEL_CPUS = String(l.cpu_request);
  if (l.cpu_limit !== undefined) out.KERNEL_CPUS_LIMIT = String(l.cpu_limit);
  if (l.memory_request_mib !== undefined) out.KERNEL_MEMORY = `${l.memory_request_mib}Mi`;
  if (l.memory_limit_mib !== undefined) out.KERNEL_MEMORY_LIMIT = `${l.memory_limit_mib}Mi`;
  if (l.gpu_limit !== undefined) {
    out.KERNEL_GPUS = String(l.gpu_limit);
    out.KERNEL_GPUS_LIMIT = String(l.gpu_limit);
  }
  return out;
}
