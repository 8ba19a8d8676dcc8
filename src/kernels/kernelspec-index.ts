/**
 * The kernelspec index: per-user state of the home tree plus the shared (admin) kernelspecs, kept
 * fresh by signature checks instead of rescans.
 *
 * Freshness (NFS/EFS deliver no reliable inotify): a request finding its user's state older than
 * `ttlMs` (default 1 s) starts a revalidation pass; while the state is younger than `maxStaleMs`
 * (default 1.5 × `ttlMs`) the request is answered from memory at once and the pass runs behind it
 * (stale-while-revalidate), only an older state makes the request wait for the pass. Whatever a
 * request is answered with therefore reflects the tree as it was less than `maxStaleMs` ago: a new,
 * removed or edited kernelspec is listed within `maxStaleMs` plus one pass (< 2 s by default).
 *
 * A pass over an unchanged home is one round of parallel `stat`s and nothing else: one per directory
 * level — `.conda/envs`, each env's `share/jupyter/kernels`, each kernel directory,
 * `~/.local/share/jupyter/kernels` — plus each kernel.json (17 for a user with 5 environments). The
 * directory stats see entries added, removed or renamed (a new environment, `jupyter kernelspec
 * install`, a logo added, an editor saving kernel.json by rename); kernel.json's own stat sees an edit
 * made in place, which changes no directory's mtime. Only a directory whose signature changed is
 * listed again and only a kernelspec that changed is read again. That holds if the NFS client's
 * attribute cache is not older: mount with `actimeo=1` (or `acdirmax=1`). Cost per request depends on
 * the requesting user's own kernels only, never on the number of users; users are evicted
 * least-recently-used beyond `maxUsers`. On NFS, raise `UV_THREADPOOL_SIZE` (e.g. 64): every `stat`
 * occupies a libuv thread for a network round trip.
 *
 * Security: a user's home must resolve to exactly `realpath(homeRoot)/<user>`; every directory and
 * file read for a user must resolve (symlinks followed) inside that home, so a link to `/etc` or to
 * another user's home is refused (logged at warn) and hides only what it points to.
 */
import path from 'node:path';
import { errorCode, nodeFs, signature, type KernelFs } from './fs-layer';
import { isLocalFsType, unchangedAsync, unchangedSync } from './quick-check';
import type { DiscoveredKernelspec } from './kernelspec';
import { describeConda, describeLocal, describeShared, mergeKernels } from './kernel-sources';
import { assertValidUsername } from './names';
import {
  EMPTY_KERNELS_DIR,
  refreshKernelsDir,
  refreshListing,
  tryStat,
  describeFailure,
  type KernelLogger,
  type KernelsDirState,
  type ScanContext,
} from './scan';

export interface KernelspecIndexOptions {
  /** Root of the homes (`SPAWNGATE_HOME_ROOT`); `<homeRoot>/<user>` is a home. */
  homeRoot: string;
  /** Admin kernelspec directories (`SPAWNGATE_SHARED_KERNELS`), earlier ones win on a name clash. */
  sharedDirs?: readonly string[];
  /** Milliseconds a validated state is served without touching the file system. Default 1000. */
  ttlMs?: number;
  /**
   * Milliseconds a state may age before a request waits for its revalidation; younger than this (and
   * older than `ttlMs`) it is served at once while the pass runs in the background. The freshness
   * bound. Default 1.5 × `ttlMs` (0 with `ttlMs: 0`: every request waits for a pass).
   */
  maxStaleMs?: number;
  /** Users kept in memory (least recently used evicted). Default 10,000. */
  maxUsers?: number;
  /** Largest kernel.json, bytes. Default 1 MiB. */
  maxKernelJsonBytes?: number;
  /** Conda environments considered per home (the rest ignored, with a warning). Default 50,000. */
  maxEnvironments?: number;
  /** Kernel directories considered per kernels directory. Default 1,000. */
  maxKernelsPerDir?: number;
  /** File-system calls in flight per directory level of a pass. Default 16. */
  concurrency?: number;
  /** File-system layer (tests inject failures). */
  fs?: KernelFs;
  logger?: KernelLogger;
  /** Clock, ms. */
  now?: () => number;
}

interface CondaState {
  sig: string | null;
  real: string | null;
  envs: Map<string, KernelsDirState>;
}

const EMPTY_CONDA: CondaState = Object.freeze({ sig: null, real: null, envs: new Map() }) as CondaState;

interface UserState {
  /** Clock value at the start of the last completed pass; -Infinity before the first. */
  checkedAt: number;
  pending: Promise<void> | undefined;
  homeSig: string | null;
  homeReal: string | null;
  /** The home's device when it is on a local file system: revalidation may then `stat` synchronously. */
  localDev: number | null;
  conda: CondaState;
  local: KernelsDirState;
  /** conda first, then local kernels not shadowed by a conda name; sorted by name. */
  kernels: readonly DiscoveredKernelspec[];
}

interface SharedState {
  checkedAt: number;
  pending: Promise<void> | undefined;
  dirs: KernelsDirState[];
  kernels: readonly DiscoveredKernelspec[];
}

const silentLogger: KernelLogger = { warn: () => undefined, debug: () => undefined };

export interface KernelspecIndexStats {
  users: number;
  userKernels: number;
  sharedKernels: number;
}

export class KernelspecIndex {
  readonly homeRoot: string;
  readonly sharedDirs: readonly string[];
  private readonly ttlMs: number;
  private readonly maxStaleMs: number;
  private readonly maxUsers: number;
  private readonly maxEnvironments: number;
  private readonly ctx: ScanContext;
  private readonly now: () => number;
  private readonly users = new Map<string, UserState>();
  private readonly shared: SharedState = { checkedAt: -Infinity, pending: undefined, dirs: [], kernels: [] };
  private rootReal: { value: string | null; checkedAt: number } = { value: null, checkedAt: -Infinity };
  /** Whether the home root is on a local file system (its realpath may then be refreshed synchronously). */
  private rootLocal = false;

  constructor(opts: KernelspecIndexOptions) {
    this.homeRoot = path.resolve(opts.homeRoot);
    this.sharedDirs = (opts.sharedDirs ?? []).map((d) => path.resolve(d));
    this.ttlMs = opts.ttlMs ?? 1000;
    this.maxStaleMs = Math.max(this.ttlMs, opts.maxStaleMs ?? 1.5 * this.ttlMs);
    this.maxUsers = opts.maxUsers ?? 10_000;
    this.maxEnvironments = opts.maxEnvironments ?? 50_000;
    this.now = opts.now ?? (() => performance.now());
    this.ctx = {
      fs: opts.fs ?? nodeFs,
      logger: opts.logger ?? silentLogger,
      maxKernelJsonBytes: opts.maxKernelJsonBytes ?? 1024 * 1024,
      maxKernelsPerDir: opts.maxKernelsPerDir ?? 1000,
      concurrency: opts.concurrency ?? 16,
    };
  }

  /**
   * The kernelspecs in `user`'s home (conda environments and `~/.local`), without the shared ones and
   * without authorization filtering. A missing home is an empty list. Throws `InvalidUsernameError`
   * for an unusable name. Reflects the home as it was less than `maxStaleMs` ago (see the header).
   */
  async userKernels(user: string): Promise<readonly DiscoveredKernelspec[]> {
    assertValidUsername(user);
    let state = this.users.get(user);
    if (state) {
      this.users.delete(user); // LRU: move to the newest end
      this.users.set(user, state);
    } else {
      state = {
        checkedAt: -Infinity,
        pending: undefined,
        homeSig: null,
        homeReal: null,
        localDev: null,
        conda: EMPTY_CONDA,
        local: EMPTY_KERNELS_DIR,
        kernels: [],
      };
      this.users.set(user, state);
      while (this.users.size > this.maxUsers) {
        const oldest = this.users.keys().next().value as string;
        this.users.delete(oldest);
      }
    }
    const s = state;
    const now = this.now();
    const age = now - s.checkedAt;
    if (age >= this.ttlMs) {
      // A home checked synchronously needs no head start on the bound: it is checked once it is reached.
      if (s.pending === undefined && s.localDev !== null && age < this.maxStaleMs) return s.kernels;
      const verdict = s.pending === undefined ? this.checkNow(s) : 'untold';
      if (verdict === 'unchanged') {
        s.checkedAt = now;
        return s.kernels;
      }
      // A change the check just found needs no second check before the pass.
      s.pending ??= this.revalidateUser(user, s, verdict === 'changed');
      if (age >= this.maxStaleMs) await s.pending;
    }
    return s.kernels;
  }

  /**
   * Checks a home on a local file system right now, synchronously (quick-check.ts): 'unchanged' is
   * answered without a pass, 'changed' needs one; 'untold' when it cannot be checked here.
   */
  private checkNow(s: UserState): 'unchanged' | 'changed' | 'untold' {
    const { statSync } = this.ctx.fs;
    if (s.localDev === null || s.homeReal === null || statSync === undefined) return 'untold';
    if (!this.rootFreshSync()) return 'untold';
    const verdict = unchangedSync(statSync, s.homeReal, s.localDev, s);
    if (verdict !== 'unsuitable') return verdict;
    s.localDev = null; // a mount inside the home, or too large a home
    return 'untold';
  }

  /**
   * One pass for `user`, never rejecting (a failure is logged and keeps the state it left). `changed`:
   * a check just found a change, so the pass skips its own quick check.
   */
  private async revalidateUser(user: string, s: UserState, changed = false): Promise<void> {
    const started = this.now();
    try {
      await this.refreshUser(user, s, changed);
    } catch (err) {
      this.ctx.logger.warn('kernelspec discovery failed for user', { user, reason: describeFailure(err) });
    } finally {
      s.checkedAt = started;
      s.pending = undefined;
    }
  }

  /** The shared (admin) kernelspecs, first directory winning on a name clash. Fresh as `userKernels`. */
  async sharedKernels(): Promise<readonly DiscoveredKernelspec[]> {
    const s = this.shared;
    const age = this.now() - s.checkedAt;
    if (age >= this.ttlMs) {
      s.pending ??= this.revalidateShared();
      if (age >= this.maxStaleMs) await s.pending;
    }
    return s.kernels;
  }

  /**
   * Resolves once no revalidation pass started so far is still running (passes may run behind
   * answered requests). For tests and orderly shutdown.
   */
  async settled(): Promise<void> {
    const pending = [this.shared.pending, ...[...this.users.values()].map((u) => u.pending)];
    await Promise.all(pending);
  }

  private async revalidateShared(): Promise<void> {
    const s = this.shared;
    const started = this.now();
    try {
      await this.refreshShared();
    } catch (err) {
      this.ctx.logger.warn('shared kernelspec discovery failed', { reason: describeFailure(err) });
    } finally {
      s.checkedAt = started;
      s.pending = undefined;
    }
  }

  /** Forgets a user's state (the next request reads the home afresh). */
  forget(user: string): void {
    this.users.delete(user);
  }

  stats(): KernelspecIndexStats {
    let userKernels = 0;
    for (const s of this.users.values()) userKernels += s.kernels.length;
    return { users: this.users.size, userKernels, sharedKernels: this.shared.kernels.length };
  }

  private async homeRootReal(): Promise<string | null> {
    const now = this.now();
    if (now - this.rootReal.checkedAt < this.ttlMs) return this.rootReal.value;
    let value: string | null = null;
    try {
      value = await this.ctx.fs.realpath(this.homeRoot);
    } catch (err) {
      if (this.rootReal.value !== null || this.rootReal.checkedAt === -Infinity) {
        this.ctx.logger.warn('home root unreadable', { path: this.homeRoot, code: errorCode(err) });
      }
    }
    if (value !== this.rootReal.value) this.rootLocal = value !== null && (await this.isLocal(value));
    this.rootReal = { value, checkedAt: now };
    return value;
  }

  /**
   * The home root's realpath is fresh, or was made fresh synchronously (a local root) and did not
   * change. False sends the request down the asynchronous path, which refreshes and logs.
   */
  private rootFreshSync(): boolean {
    const now = this.now();
    if (now - this.rootReal.checkedAt < this.ttlMs) return this.rootReal.value !== null;
    const { realpathSync } = this.ctx.fs;
    if (realpathSync === undefined || !this.rootLocal || this.rootReal.value === null) return false;
    try {
      if (realpathSync(this.homeRoot) !== this.rootReal.value) return false;
    } catch {
      return false;
    }
    this.rootReal = { value: this.rootReal.value, checkedAt: now };
    return true;
  }

  /**
   * Checks that `<root>/<user>` is a real directory directly under the home root (not a symlink) and
   * records it. Returns false (state reset) when the home is missing or refused; a refusal is logged
   * once per change of the home's signature.
   */
  private async verifyHome(s: UserState, logicalHome: string): Promise<boolean> {
    const { fs, logger } = this.ctx;
    const st = await tryStat(fs, logicalHome);
    if (!st.ok) {
      const sig = st.missing ? null : `!${st.code}`;
      if (sig !== null && s.homeSig !== sig)
        logger.warn('home unreadable; no user kernelspecs', { path: logicalHome, code: st.code });
      resetUser(s);
      s.homeSig = sig;
      return false;
    }
    const sig = signature(st.stat);
    if (s.homeReal === null && s.homeSig === sig) return false; // refused before, unchanged since
    let real: string | null = null;
    try {
      real = await fs.realpath(logicalHome);
    } catch (err) {
      logger.warn('home unreadable; no user kernelspecs', { path: logicalHome, code: errorCode(err) });
    }
    const ok = real === logicalHome && st.stat.isDirectory();
    const localDev = ok && (await this.isLocal(logicalHome)) ? st.stat.dev : null;
    if (!ok && real !== null) {
      logger.warn('home refused: it must be a directory directly under the home root, not a symlink', {
        path: logicalHome,
        resolves_to: real,
      });
    }
    if (!ok || s.homeReal !== real) resetUser(s);
    s.homeSig = sig;
    s.homeReal = ok ? real : null;
    s.localDev = localDev;
    return ok;
  }

  /** Whether `dir` lies on a file system known to be local (false when that cannot be told). */
  private async isLocal(dir: string): Promise<boolean> {
    try {
      return this.ctx.fs.statSync !== undefined && this.ctx.fs.fsType !== undefined && isLocalFsType(await this.ctx.fs.fsType(dir));
    } catch {
      return false;
    }
  }

  private async refreshUser(user: string, s: UserState, changed: boolean): Promise<void> {
    const rootReal = await this.homeRootReal();
    if (rootReal === null) return resetUser(s);
    const logicalHome = `${rootReal === '/' ? '' : rootReal}/${user}`;
    let verified = false;
    if (s.homeReal === null) {
      if (!(await this.verifyHome(s, logicalHome))) return;
      verified = true;
    } else if (!changed && (await unchangedAsync(this.ctx.fs, s.homeReal, s))) {
      return; // the pass below would change nothing; it runs only for what changed
    }
    const home = s.homeReal as string;
    // One round of parallel stats for everything already known; reads only for what changed.
    const [conda, local] = await Promise.all([
      this.refreshConda(s.conda, `${home}/.conda/envs`, home),
      refreshKernelsDir(this.ctx, s.local, `${home}/.local/share/jupyter/kernels`, home, describeLocal),
    ]);
    if (!verified && (conda.sig !== s.conda.sig || local.sig !== s.local.sig)) {
      // Something at the top changed: make sure the home itself is still what it was.
      if (!(await this.verifyHome(s, logicalHome)) || s.homeReal !== home) return;
    }
    if (conda === s.conda && local === s.local) return; // nothing changed: keep the built list
    s.conda = conda;
    s.local = local;
    // Conda kernelspecs take precedence over `~/.local` ones of the same name.
    s.kernels = mergeKernels([...conda.envs.values(), local]);
  }

  private async refreshConda(prev: CondaState, logical: string, home: string): Promise<CondaState> {
    const r = await refreshListing<KernelsDirState>(this.ctx, {
      prevSig: prev.sig,
      prevReal: prev.real,
      prevChildren: prev.envs,
      logical,
      confine: home,
      limit: this.maxEnvironments,
      what: 'conda envs directory',
      refreshChild: (real, env, p) =>
        refreshKernelsDir(this.ctx, p, `${real}/${env}/share/jupyter/kernels`, home, describeConda(env)),
    });
    if (r.sig === null) return EMPTY_CONDA;
    if (prev.sig === r.sig && prev.real === r.real && prev.envs === r.children) return prev;
    return { sig: r.sig, real: r.real, envs: r.children };
  }

  private async refreshShared(): Promise<void> {
    const s = this.shared;
    const dirs = await Promise.all(
      this.sharedDirs.map((dir, i) => refreshKernelsDir(this.ctx, s.dirs[i], dir, null, describeShared)),
    );
    s.dirs = dirs;
    s.kernels = mergeKernels(dirs);
  }
}

function resetUser(s: UserState): void {
  s.homeReal = null;
  s.localDev = null;
  s.conda = EMPTY_CONDA;
  s.local = EMPTY_KERNELS_DIR;
  s.kernels = [];
}
