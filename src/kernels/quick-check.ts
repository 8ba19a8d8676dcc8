/**
 * The revalidation of a home that did not change, without the machinery of a pass.
 *
 * A pass (scan.ts) walks its state level by level through promises and, when nothing changed, ends
 * up with the very state it started from. This module makes exactly the same `stat`s — the conda envs
 * directory, each environment's kernels directory, each kernel directory and kernel.json, the
 * `~/.local` kernels directory and its kernels, and no others — and only answers whether every one of
 * them still has the signature the state recorded. When it says yes, the pass would have changed
 * nothing; when it says no (or cannot tell), the caller runs the pass, which decides what changed.
 *
 * Where a home lies on a local file system (ext4, xfs, tmpfs, overlay …: `isLocalFsType`), the stats
 * are synchronous: each costs ~4 µs, against ~14 µs of CPU through libuv's thread pool (a hand-off
 * to a thread and back), and a local `stat` cannot hang the way an NFS one can. Homes on NFS, EFS,
 * FUSE and every file system not known to be local keep asynchronous stats (one parallel round).
 */
import type { KernelFs } from './fs-layer';
import { kernelDirSig, kernelJsonSig, listingSig, tryStat, tryStatSync, type KernelsDirState, type StatResult } from './scan';

/** The part of a user's state the check reads (kernelspec-index.ts's UserState). */
export interface HomeState {
  conda: { sig: string | null; real: string | null; envs: ReadonlyMap<string, KernelsDirState> };
  local: KernelsDirState;
}

/**
 * `statfs(2)` magic numbers of file systems whose `stat` is answered by this kernel from local
 * storage. Anything else — nfs (0x6969), fuse, cifs/smb2, ceph, lustre, gpfs, 9p, autofs — is
 * treated as remote.
 */
const LOCAL_FS_TYPES = new Set([
  0xef53, // ext2/3/4
  0x58465342, // xfs
  0x9123683e, // btrfs
  0x01021994, // tmpfs
  0x858458f6, // ramfs
  0x794c7630, // overlayfs
  0x2fc12fc1, // zfs
  0xf2f52010, // f2fs
  0xca451a4e, // bcachefs
]);

export const isLocalFsType = (type: number): boolean => LOCAL_FS_TYPES.has(type >>> 0);

/** What the pass records of one stat (scan.ts): the check compares that with what the state holds. */
type Recorded = (r: StatResult) => string | null | undefined;

/**
 * Calls `visit(path, recorded, expected)` for every stat the pass would make over `state`, stopping
 * early when `visit` returns false. Returns false when it stopped.
 */
function walk(home: string, state: HomeState, visit: (path: string, recorded: Recorded, expected: string | null) => boolean): boolean {
  const kernelsDir = (path: string, d: KernelsDirState): boolean => {
    if (!visit(path, listingSig, d.sig)) return false;
    if (d.real === null) return true;
    for (const [name, k] of d.kernels) {
      const dir = `${d.real}/${name}`;
      if (!visit(dir, kernelDirSig, k.dirSig) || !visit(`${dir}/kernel.json`, kernelJsonSig, k.jsonSig)) return false;
    }
    return true;
  };
  const { conda } = state;
  if (!visit(`${home}/.conda/envs`, listingSig, conda.sig)) return false;
  if (conda.real !== null) {
    for (const [env, d] of conda.envs) if (!kernelsDir(`${conda.real}/${env}/share/jupyter/kernels`, d)) return false;
  }
  return kernelsDir(`${home}/.local/share/jupyter/kernels`, state.local);
}

/**
 * Most stats one synchronous check makes (about 6 µs each): a home with more kernelspecs than this
 * allows (~65) would hold the event loop too long, and is checked asynchronously instead.
 */
export const MAX_SYNC_STATS = 200;

/**
 * Synchronous check for a home on a local file system whose device is `dev`. Returns 'unchanged',
 * 'changed', or 'unsuitable' when a path lies on another device (a mount inside the home, whose kind
 * is unknown) or the home needs more than `MAX_SYNC_STATS` stats: the caller stops using synchronous
 * stats for this home.
 */
export function unchangedSync(
  statSync: NonNullable<KernelFs['statSync']>,
  home: string,
  dev: number,
  state: HomeState,
): 'unchanged' | 'changed' | 'unsuitable' {
  let unsuitable = false;
  let count = 0;
  const same = walk(home, state, (path, recorded, expected) => {
    if (++count > MAX_SYNC_STATS) return !(unsuitable = true);
    const r = tryStatSync(statSync, path);
    if (r.ok && r.stat.dev !== dev) unsuitable = true;
    return recorded(r) === expected;
  });
  return unsuitable ? 'unsuitable' : same ? 'unchanged' : 'changed';
}

/** The same check through `fs.stat` (any file system, injected ones included): one parallel round. */
export async function unchangedAsync(fs: KernelFs, home: string, state: HomeState): Promise<boolean> {
  const checks: Promise<boolean>[] = [];
  walk(home, state, (path, recorded, expected) => {
    checks.push(tryStat(fs, path).then((r) => recorded(r) === expected));
    return true;
  });
  return (await Promise.all(checks)).every(Boolean);
}
