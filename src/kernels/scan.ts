/**
 * Incremental scanning of one "kernels directory" (`<dir>/<kernel>/kernel.json`, the standard Jupyter
 * layout). State from the previous pass is reused unless a stat signature changed.
 *
 * A pass over a directory it has seen before is one round of parallel `stat`s: the kernels directory
 * itself, each known kernel directory and each known kernel.json, all at once. A directory's mtime
 * moves when an entry is created, removed or renamed in it (`jupyter kernelspec install`, a logo
 * added, an editor saving by rename) but not when a file in it is rewritten in place, so kernel.json
 * needs its own stat to see such an edit. Only a changed kernels directory is listed again; only a
 * changed kernel is read again.
 */
import {
  ConfinementError,
  confinedDir,
  errorCode,
  FileTooLargeError,
  isMissing,
  mapLimit,
  readConfinedFile,
  signature,
  type KernelFs,
  type StatLike,
} from './fs-layer';
import {
  InvalidKernelJsonError,
  parseKernelJson,
  resourcesFromEntries,
  type DiscoveredKernelspec,
  type ParsedKernelJson,
} from './kernelspec';
import { isValidComponent, isValidResourceName } from './names';

/** The logger surface discovery uses (winston's `Logger` fits). */
export interface KernelLogger {
  warn(message: string, meta?: Record<string, unknown>): unknown;
  debug(message: string, meta?: Record<string, unknown>): unknown;
}

export interface ScanContext {
  fs: KernelFs;
  logger: KernelLogger;
  /** Largest kernel.json read, bytes. */
  maxKernelJsonBytes: number;
  /** Most kernel directories considered in one kernels directory. */
  maxKernelsPerDir: number;
  /** File-system calls in flight per directory level. */
  concurrency: number;
}

/** Names and places a parsed kernel.json: exposed name, source, environment; null skips it (e.g. a name too long). */
export type Describe = (
  dirName: string,
  parsed: ParsedKernelJson,
) => Pick<DiscoveredKernelspec, 'name' | 'source' | 'environment'> | null;

export interface KernelDirState {
  /** Signature of the kernel directory. */
  dirSig: string;
  /** Signature of its kernel.json (`!CODE` when stat failed). */
  jsonSig: string;
  /** The kernelspec, or null when broken / refused (already logged). */
  kernel: DiscoveredKernelspec | null;
}

export interface KernelsDirState {
  /** Signature of the kernels directory; null when it does not exist, `!CODE` when stat failed. */
  sig: string | null;
  /** Real path, or null when missing, refused or unreadable. */
  real: string | null;
  kernels: Map<string, KernelDirState>;
}

export const EMPTY_KERNELS_DIR: KernelsDirState = Object.freeze({
  sig: null,
  real: null,
  kernels: new Map(),
}) as KernelsDirState;

export type StatResult = { ok: true; stat: StatLike } | { ok: false; missing: boolean; code: string };

export async function tryStat(fs: KernelFs, path: string): Promise<StatResult> {
  try {
    return { ok: true, stat: await fs.stat(path) };
  } catch (err) {
    return { ok: false, missing: isMissing(err), code: errorCode(err) };
  }
}

/** `tryStat` through a synchronous `stat` (`KernelFs.statSync`: undefined when missing). */
export function tryStatSync(statSync: NonNullable<KernelFs['statSync']>, path: string): StatResult {
  try {
    const stat = statSync(path);
    return stat === undefined ? { ok: false, missing: true, code: 'ENOENT' } : { ok: true, stat };
  } catch (err) {
    return { ok: false, missing: isMissing(err), code: errorCode(err) };
  }
}

/*
 * What a pass records of a stat, in one place (quick-check.ts compares against exactly these):
 * a listed directory (a kernels directory, `.conda/envs`) is null when missing or not a directory;
 * a kernel directory is undefined then (the pass drops that kernel); any other failure is `!CODE`.
 */
export function listingSig(r: StatResult): string | null {
  if (!r.ok) return r.missing ? null : `!${r.code}`;
  return r.stat.isDirectory() ? signature(r.stat) : null;
}

export function kernelDirSig(r: StatResult): string | undefined {
  if (!r.ok) return r.missing ? undefined : `!${r.code}`;
  return r.stat.isDirectory() ? signature(r.stat) : undefined;
}

export function kernelJsonSig(r: StatResult): string {
  return r.ok ? signature(r.stat) : `!${r.code}`;
}

/** Why a read failed, for the warning. */
export function describeFailure(err: unknown): string {
  if (err instanceof InvalidKernelJsonError) return `invalid kernel.json: ${err.message}`;
  if (err instanceof ConfinementError || err instanceof FileTooLargeError) return err.message;
  return `${errorCode(err)}: ${(err as Error).message}`;
}

/**
 * The directory-level logic shared by kernels directories and `.conda/envs`: `stat` the directory
 * and, in the same round, refresh every child known from `prev`; list the directory again only when
 * its signature changed, refreshing the children that are new. Never throws.
 */
export async function refreshListing<C>(
  ctx: ScanContext,
  opts: {
    prevSig: string | null | undefined;
    prevReal: string | null | undefined;
    prevChildren: ReadonlyMap<string, C> | undefined;
    logical: string;
    confine: string | null;
    limit: number;
    what: string;
    refreshChild: (real: string, name: string, prev: C | undefined) => Promise<C | undefined>;
  },
): Promise<{ sig: string | null; real: string | null; children: Map<string, C> }> {
  const { prevSig, prevReal, prevChildren, logical } = opts;
  const known = prevReal && prevChildren ? [...prevChildren.keys()] : [];
  const [st, knownStates] = await Promise.all([
    tryStat(ctx.fs, logical),
    mapLimit(known, ctx.concurrency, (name) =>
      opts.refreshChild(prevReal as string, name, prevChildren?.get(name)),
    ),
  ]);
  const sig = listingSig(st);
  if (!st.ok || sig === null) {
    if (!st.ok && sig !== null && prevSig !== sig)
      ctx.logger.warn(`${opts.what} unreadable; skipped`, { path: logical, code: st.code });
    return { sig, real: null, children: new Map() };
  }
  if (prevSig === sig && prevReal && prevChildren) {
    // Unchanged directory whose children are all unchanged: hand back the very same map (no garbage).
    if (known.every((name, i) => knownStates[i] === prevChildren.get(name))) {
      return { sig, real: prevReal, children: prevChildren as Map<string, C> };
    }
    const children = new Map<string, C>();
    known.forEach((name, i) => {
      const c = knownStates[i];
      if (c !== undefined) children.set(name, c);
    });
    return { sig, real: prevReal, children };
  }
  const children = new Map<string, C>();
  if (prevSig === sig) return { sig, real: null, children }; // refused or unreadable before, unchanged since
  let real: string;
  let names: string[];
  try {
    real = (await confinedDir(ctx.fs, logical, opts.confine)).real;
    names = (await ctx.fs.readdir(real)).filter(isValidComponent).sort();
  } catch (err) {
    ctx.logger.warn(`${opts.what} refused or unreadable; skipped`, {
      path: logical,
      reason: describeFailure(err),
    });
    return { sig, real: null, children };
  }
  if (names.length > opts.limit) {
    ctx.logger.warn(`${opts.what}: too many entries; the rest are ignored`, {
      path: logical,
      count: names.length,
      limit: opts.limit,
    });
    names = names.slice(0, opts.limit);
  }
  const reusable =
    real === prevReal
      ? new Map(known.map((name, i) => [name, knownStates[i]] as const))
      : new Map<string, C | undefined>();
  const states = await mapLimit(names, ctx.concurrency, (name) =>
    reusable.has(name) ? Promise.resolve(reusable.get(name)) : opts.refreshChild(real, name, undefined),
  );
  names.forEach((name, i) => {
    const c = states[i];
    if (c !== undefined) children.set(name, c);
  });
  return { sig, real, children };
}

/**
 * Brings the state of one kernels directory up to date. `confine` is the directory every path must
 * resolve into (a user's home), or null for admin directories, where only the files of a kernel must
 * stay inside that kernel's own directory. Never throws: failures hide the affected kernelspec (or
 * directory) and are logged once per change, at warn, with the path.
 */
export async function refreshKernelsDir(
  ctx: ScanContext,
  prev: KernelsDirState | undefined,
  logical: string,
  confine: string | null,
  describe: Describe,
): Promise<KernelsDirState> {
  const r = await refreshListing<KernelDirState>(ctx, {
    prevSig: prev?.sig,
    prevReal: prev?.real,
    prevChildren: prev?.kernels,
    logical,
    confine,
    limit: ctx.maxKernelsPerDir,
    what: 'kernelspec directory',
    refreshChild: (real, name, p) => refreshKernelDir(ctx, p, real, name, confine, describe),
  });
  if (r.sig === null && r.children.size === 0) return EMPTY_KERNELS_DIR;
  if (prev && prev.sig === r.sig && prev.real === r.real && prev.kernels === r.children) return prev;
  return { sig: r.sig, real: r.real, kernels: r.children };
}

async function refreshKernelDir(
  ctx: ScanContext,
  prev: KernelDirState | undefined,
  parentReal: string,
  name: string,
  confine: string | null,
  describe: Describe,
): Promise<KernelDirState | undefined> {
  const logical = `${parentReal}/${name}`;
  const [dirSt, jsonSt] = await Promise.all([tryStat(ctx.fs, logical), tryStat(ctx.fs, `${logical}/kernel.json`)]);
  const dirSig = kernelDirSig(dirSt);
  if (dirSig === undefined) return undefined; // removed, or a plain file among the kernel dirs
  const jsonSig = kernelJsonSig(jsonSt);
  if (prev && prev.dirSig === dirSig && prev.jsonSig === jsonSig) return prev;
  const state = { dirSig, jsonSig, kernel: null as DiscoveredKernelspec | null };
  if (!jsonSt.ok && jsonSt.missing && dirSt.ok) {
    ctx.logger.debug('kernel directory without kernel.json; skipped', { path: logical });
    return state;
  }
  try {
    const dir = await confinedDir(ctx.fs, logical, confine);
    const root = confine ?? dir.real;
    const [{ data }, entries] = await Promise.all([
      readConfinedFile(ctx.fs, `${dir.real}/kernel.json`, root, ctx.maxKernelJsonBytes),
      ctx.fs.readdir(dir.real),
    ]);
    const parsed = parseKernelJson(data);
    const d = describe(name, parsed);
    if (d !== null) {
      state.kernel = Object.freeze({
        name: d.name,
        source: d.source,
        spec: parsed.spec,
        environment: d.environment,
        dir: dir.real,
        root,
        resources: resourcesFromEntries(entries, isValidResourceName),
        access: parsed.access,
      });
    }
  } catch (err) {
    ctx.logger.warn('kernelspec ignored', { path: `${logical}/kernel.json`, reason: describeFailure(err) });
  }
  return state;
}
