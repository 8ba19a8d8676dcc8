/**
 * Whose identity a local workload runs with. spawngate as root: the owner of the user's home (uid, gid
 * and that user's supplementary groups), through util-linux `setpriv` — Node's own `spawn({uid, gid})`
 * calls setgroups(0) and would drop the supplementary groups. spawngate not root: it can only run
 * workloads as itself, so it serves one user, whose home it owns, unless the administrator opted into
 * one shared identity for every user (a personal or demo machine).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { PermanentBackendError, type WorkloadSpec } from '../types';
import { workloadIdentity, type WorkloadIdentity } from '../support/workload-identity';
import { findTool } from './executables';

export interface LocalIdentityOptions {
  /** Root of users' homes: a workload of user U runs as the owner of `<homeRoot>/U`, with HOME there. */
  homeRoot: string;
  /**
   * Every workload runs as spawngate's own user (root included, when spawngate is root). For a
   * single-user or demo machine only: users then share files and processes. `<homeRoot>/<user>`, when
   * it exists, is HOME and the working directory. Default false.
   */
  shared?: boolean;
  /** Accept root-owned homes (their workloads run as root). Default false. */
  allowRoot?: boolean;
  /** util-linux `setpriv`. Default: found on PATH. */
  setpriv?: string;
}

/** Setting names, for messages a person can act on (see config/schema.ts). */
export const SHARED_IDENTITY_SETTING = 'SPAWNGATE_LOCAL_SHARED_IDENTITY';
export const ALLOW_ROOT_SETTING = 'SPAWNGATE_LOCAL_ALLOW_ROOT';

/** How one workload is run: argv prefix that switches identity, HOME and working directory. */
export interface RunAs {
  /** `setpriv … --` when the identity differs from spawngate's, else empty. */
  wrapper: string[];
  uid: number;
  gid: number;
  /** The user's home (HOME), when the workload belongs to a user. */
  home?: string;
  /** The hub user the workload belongs to (`KERNEL_USERNAME`). */
  user?: string;
}

const myUid = (): number => process.getuid?.() ?? -1;
const myGid = (): number => process.getgid?.() ?? -1;

/** uids known to have a passwd entry (only positives are kept: a user may be added later). */
const knownUsers = new Set<number>();

/** Whether `uid` has a passwd entry (initgroups needs one); NSS is asked, so LDAP users count. */
function hasPasswdEntry(uid: number): boolean {
  if (knownUsers.has(uid)) return true;
  const found = spawnSync('getent', ['passwd', String(uid)], { stdio: 'ignore' }).status === 0;
  if (found) knownUsers.add(uid);
  return found;
}

export class IdentityPolicy {
  private readonly setpriv: string | undefined;
  /** The one user a non-root, non-shared spawngate serves (the first one it was asked for). */
  private soleUser: string | undefined;

  constructor(private readonly options: LocalIdentityOptions | undefined) {
    this.setpriv = options?.setpriv ?? findTool('setpriv');
  }

  /** Whether users' workloads run as different uids (spawngate is root, identities not shared). */
  separatesUsers(): boolean {
    return this.options !== undefined && !this.options.shared && myUid() === 0;
  }

  /** What the factory warns about at start-up; undefined when workloads get their users' identities. */
  describeShared(): string | undefined {
    if (!this.options) return undefined;
    if (this.options.shared) {
      return `${SHARED_IDENTITY_SETTING} is set: every user's workloads run as spawngate's own user (uid ${myUid()}); users are not isolated from each other`;
    }
    if (myUid() !== 0) {
      return `spawngate is not root (uid ${myUid()}): the local backend can run workloads only as itself and will serve one user; set ${SHARED_IDENTITY_SETTING}=1 to let several users share that identity`;
    }
    return undefined;
  }

  /** Users already served (from records of an earlier spawngate), so a restart keeps the one-user rule. */
  remember(user: string | undefined): void {
    if (user !== undefined) this.soleUser ??= user;
  }

  /**
   * The identity for `spec`; throws PermanentBackendError when it may not run (see module header).
   * `peek` answers without claiming the one-user slot of a non-root spawngate.
   */
  async resolve(spec: WorkloadSpec, opts: { peek?: boolean } = {}): Promise<RunAs> {
    const self: RunAs = { wrapper: [], uid: myUid(), gid: myGid() };
    const o = this.options;
    if (!o) return self;
    const user = spec.env?.KERNEL_USERNAME;
    if (o.shared) {
      // No isolation is promised here: the user's directory, when there is one, is HOME and the
      // working directory; without one the spec's own HOME and working directory are used.
      if (user === undefined) return self;
      const home = await workloadIdentity(o.homeRoot, user, { allowRoot: true }).then(
        (id) => id.home,
        () => undefined,
      );
      return { ...self, user, ...(home ? { home } : {}) };
    }
    if (user === undefined) {
      throw new PermanentBackendError(
        `workload ${spec.name} names no user (KERNEL_USERNAME): the local backend runs each workload as the owner of the user's home`,
      );
    }
    const id = await workloadIdentity(o.homeRoot, user, { allowRoot: o.allowRoot, allowRootSetting: `${ALLOW_ROOT_SETTING}=1` });
    if (myUid() !== 0) return this.asSelf(id, user, opts.peek);
    if (id.uid === 0 && id.gid === 0) return { ...self, home: id.home, user };
    if (!this.setpriv) {
      throw new PermanentBackendError(
        `cannot run ${spec.name} as uid ${id.uid}: util-linux setpriv was not found on PATH (install util-linux)`,
      );
    }
    // initgroups(3) looks the uid up by name; a uid the system does not know has no supplementary groups.
    const groups = hasPasswdEntry(id.uid) ? '--init-groups' : '--clear-groups';
    return {
      wrapper: [this.setpriv, `--reuid=${id.uid}`, `--regid=${id.gid}`, groups, '--'],
      uid: id.uid,
      gid: id.gid,
      home: id.home,
      user,
    };
  }

  /** Not root, not shared: only the one user whose home spawngate itself owns. */
  private asSelf(id: WorkloadIdentity, user: string, peek = false): RunAs {
    const hint = `run spawngate as root to give each user their own identity, or set ${SHARED_IDENTITY_SETTING}=1 on a single-user or demo machine`;
    if (id.uid !== myUid()) {
      throw new PermanentBackendError(
        `spawngate runs as uid ${myUid()}, not root, so it can run workloads only as itself; the home ${id.home} of ${user} belongs to uid ${id.uid}: ${hint}`,
      );
    }
    if (!peek) this.soleUser ??= user;
    if ((this.soleUser ?? user) !== user) {
      throw new PermanentBackendError(
        `spawngate runs as uid ${myUid()}, not root, and already serves ${this.soleUser}; ${user} would share that identity: ${hint}`,
      );
    }
    return { wrapper: [], uid: myUid(), gid: myGid(), home: id.home, user };
  }
}

/** The working directory: `workingDir` when it lies inside `home`, else the home itself. */
export function workingDirIn(home: string, workingDir: string | undefined): string {
  if (!workingDir) return home;
  const resolved = path.resolve(home, workingDir);
  const rel = path.relative(home, resolved);
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel)) ? resolved : home;
}
