/**
 * Who may see and use which kernelspec.
 *
 * - Per kernelspec, Enterprise Gateway's semantics for `metadata.process_proxy.config`:
 *   a user in `unauthorized_users` is refused; if `authorized_users` is non-empty, only those users
 *   are admitted. Both accept a comma-separated string (as EG stores them) or an array, and match
 *   whole names (EG's `user in "alice,bob"` also admits `ali`; that bug is not copied).
 * - Gateway-wide, from the configuration's `kernels:` block: `denied_users` and (when set)
 *   `allowed_users` decide whether a user may use the gateway at all; `denied_kernels` and (when set)
 *   `allowed_kernels` decide which kernelspec names are ever offered. Kernel name entries may use `*`
 *   as a wildcard (`conda-env-*`).
 * - With no user (an admin or hub token that names nobody), only kernelspecs whose
 *   `authorized_users` is unset or empty are visible: the catalogue anyone could be shown.
 */
import type { DiscoveredKernelspec } from './kernelspec';

export interface KernelspecPolicy {
  /** Reported as `default` when visible to the user (see `KernelspecCatalog`). */
  defaultKernel?: string;
  /** Only these kernelspec names are offered (patterns with `*`); unset: all. */
  allowedKernels?: readonly string[];
  /** These kernelspec names are never offered (patterns with `*`). */
  deniedKernels?: readonly string[];
  /** Only these users may use the gateway; unset: everyone. */
  allowedUsers?: readonly string[];
  /** These users may not use the gateway. */
  deniedUsers?: readonly string[];
}

/** EG's per-kernelspec rule. `user` undefined: visible unless restricted to named users. */
export function isAuthorizedFor(k: Pick<DiscoveredKernelspec, 'access'>, user: string | undefined): boolean {
  const { authorized, unauthorized } = k.access;
  if (user === undefined) return authorized === null || authorized.size === 0;
  if (unauthorized.has(user)) return false;
  if (authorized !== null && authorized.size > 0 && !authorized.has(user)) return false;
  return true;
}

function compilePatterns(patterns: readonly string[] | undefined): ((name: string) => boolean) | undefined {
  if (patterns === undefined) return undefined;
  const exact = new Set<string>();
  const globs: RegExp[] = [];
  for (const p of patterns) {
    if (!p.includes('*')) exact.add(p);
    else
      globs.push(
        new RegExp(
          `^${p
            .split('*')
            .map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
            .join('.*')}$`,
        ),
      );
  }
  return (name) => exact.has(name) || globs.some((g) => g.test(name));
}

/** The configuration's gateway-wide rules, compiled. */
export class PolicyRules {
  private readonly allowedKernel: ((name: string) => boolean) | undefined;
  private readonly deniedKernel: (name: string) => boolean;
  private readonly allowedUsers: ReadonlySet<string> | undefined;
  private readonly deniedUsers: ReadonlySet<string>;

  constructor(readonly policy: KernelspecPolicy) {
    this.allowedKernel = compilePatterns(policy.allowedKernels);
    this.deniedKernel = compilePatterns(policy.deniedKernels ?? []) as (name: string) => boolean;
    this.allowedUsers = policy.allowedUsers ? new Set(policy.allowedUsers) : undefined;
    this.deniedUsers = new Set(policy.deniedUsers ?? []);
  }

  /** May `user` use the gateway at all? */
  userAllowed(user: string): boolean {
    if (this.deniedUsers.has(user)) return false;
    return this.allowedUsers === undefined || this.allowedUsers.has(user);
  }

  /** Is a kernelspec of this name ever offered? */
  kernelNameAllowed(name: string): boolean {
    if (this.deniedKernel(name)) return false;
    return this.allowedKernel === undefined || this.allowedKernel(name);
  }
}
