/**
 * Whose workload it is: the one home-owner rule every backend follows (DESIGN §3, "a home belongs to
 * its user"). A user's workloads run as the owner (uid, gid) of `<homeRoot>/<username>`, with that
 * directory as HOME. The user name is the hub's name, used as is (no escaping: homes are named so).
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import { PermanentBackendError } from '../types';

export interface WorkloadIdentity {
  uid: number;
  gid: number;
  /** Absolute path of the home on this machine: `<homeRoot>/<username>`. */
  home: string;
}

export interface WorkloadIdentityOptions {
  /** Accept a home owned by uid or gid 0 (workloads then run as root). Default false. */
  allowRoot?: boolean;
  /** The setting that allows root, named in the refusal (e.g. `docker.allow_root`). */
  allowRootSetting?: string;
}

/** Rejects names that would leave `homeRoot` or cannot be a directory name. */
export function homeOf(homeRoot: string, username: string): string {
  if (!username || username === '.' || username === '..' || username.includes('/') || username.includes('\0')) {
    throw new PermanentBackendError(`invalid home directory name ${JSON.stringify(username)}`);
  }
  return path.join(path.resolve(homeRoot), username);
}

/**
 * The uid/gid/home a workload of `username` runs with: the owner and group of `<homeRoot>/<username>`
 * (one stat, symlinks followed as the mount would).
 * @throws PermanentBackendError when the home is missing or not a directory, and when it belongs to
 *   root unless `allowRoot` (naming the home and the setting).
 */
export async function workloadIdentity(
  homeRoot: string,
  username: string,
  opts: WorkloadIdentityOptions = {},
): Promise<WorkloadIdentity> {
  const home = homeOf(homeRoot, username);
  let st;
  try {
    st = await fsp.stat(home);
  } catch (err) {
    throw new PermanentBackendError(`home directory ${home} of user ${username} does not exist`, { cause: err });
  }
  if (!st.isDirectory()) throw new PermanentBackendError(`home ${home} of user ${username} is not a directory`);
  if ((st.uid === 0 || st.gid === 0) && !opts.allowRoot) {
    throw new PermanentBackendError(
      `refusing to run workloads of ${username} as root: their home ${home} belongs to uid ${st.uid}, gid ${st.gid}; ` +
        `give the home to the user (chown), or set ${opts.allowRootSetting ?? 'allow_root'} to allow root`,
    );
  }
  return { uid: st.uid, gid: st.gid, home };
}
