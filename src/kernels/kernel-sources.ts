/**
 * The three sources of kernelspecs — a user's conda environments, a user's `~/.local`, the shared
 * (admin) directories — named as the gateway exposes them, and merged into one sorted list.
 */
import type { DiscoveredKernelspec } from './kernelspec';
import { condaKernelName, MAX_KERNEL_NAME_CHARS } from './names';
import type { Describe, KernelsDirState } from './scan';

function byName(a: DiscoveredKernelspec, b: DiscoveredKernelspec): number {
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/** The kernelspecs of `dirs` sorted by name, an earlier directory winning a name clash. */
export function mergeKernels(dirs: Iterable<KernelsDirState>): DiscoveredKernelspec[] {
  const found = new Map<string, DiscoveredKernelspec>();
  for (const d of dirs) {
    for (const k of d.kernels.values()) if (k.kernel && !found.has(k.kernel.name)) found.set(k.kernel.name, k.kernel);
  }
  return [...found.values()].sort(byName);
}

export function describeConda(env: string): Describe {
  return (dirName, parsed) => {
    const name = condaKernelName(env, dirName);
    if (name.length > MAX_KERNEL_NAME_CHARS) return null;
    return { name, source: 'conda', environment: parsed.explicitEnvironment ?? env };
  };
}

export const describeLocal: Describe = (dirName, parsed) => ({
  name: dirName,
  source: 'user',
  environment: parsed.explicitEnvironment,
});

export const describeShared: Describe = (dirName, parsed) => ({
  name: dirName,
  source: 'shared',
  environment: parsed.explicitEnvironment,
});
