/**
 * The per-launch inputs of `buildPod` that come from the backend's settings and the user's home: the
 * namespace, default uid/gid, and the home volume with its owner. Shared by the backend and the dry run,
 * so what an admin reviews is what would be created.
 */
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { PermanentBackendError, type WorkloadSpec } from '../types';
import { workloadIdentity } from '../support/workload-identity';
import type { EnvNameRule } from '../../config';
import type { PodManifestOptions } from './manifests';

export interface PodSettings {
  namespace: string;
  instance?: string;
  defaultRunAsUser?: number;
  defaultRunAsGroup?: number;
  home?: { claimName: string; root: string; readOnly?: boolean };
  /**
   * The home tree (`SPAWNGATE_HOME_ROOT`): when set, a pod whose profile names no `runAsUser` runs as
   * the owner of `<homeRoot>/<user>` — the rule every backend follows (support/workload-identity.ts) —
   * and a missing or root-owned home refuses the launch instead of falling back to a default uid.
   */
  homeRoot?: string;
  envNameRule?: EnvNameRule;
  defaultRequestFraction?: number;
}



/** uid/gid owning a home directory, or undefined when it cannot be read or is root's (never run as root). */
export async function homeOwner(dir: string): Promise<{ uid: number; gid: number } | undefined> {
  try {
    const st = await stat(dir);
    if (st.uid === 0) return undefined;
    return { uid: st.uid, gid: st.gid === 0 ? st.uid : st.gid };
  } catch {
    return undefined;
  }
}

/** The user is the spec's `KERNEL_USERNAME` (set for servers and kernels alike, DESIGN §1). */
export async function podManifestOptions(spec: WorkloadSpec, s: PodSettings): Promise<PodManifestOptions> {
  const opts: PodManifestOptions = {
    namespace: s.namespace,
    ...(s.defaultRunAsUser !== undefined ? { defaultRunAsUser: s.defaultRunAsUser } : {}),
    ...(s.defaultRunAsGroup !== undefined ? { defaultRunAsGroup: s.defaultRunAsGroup } : {}),
    ...(s.instance ? { instance: s.instance } : {}),
    ...(s.envNameRule ? { envNameRule: s.envNameRule } : {}),
    ...(s.defaultRequestFraction !== undefined ? { defaultRequestFraction: s.defaultRequestFraction } : {}),
  };
  const user = spec.env.KERNEL_USERNAME;
  if (s.home && user) {
    if (user.includes('/') || user === '.' || user === '..' || user.includes('\0')) {
      throw new PermanentBackendError(`kubernetes backend: user name ${JSON.stringify(user)} cannot name a home directory`);
    }
    const mountPath = path.join(s.home.root, user);
    opts.home = { claimName: s.home.claimName, mountPath, subPath: user, ...(s.home.readOnly ? { readOnly: true } : {}) };
    const owner = await homeOwner(mountPath);
    if (owner) opts.homeOwner = owner;
  }
  if (s.homeRoot && user && spec.overrides?.runAsUser === undefined) {
    // A missing home is refused (PermanentBackendError from workloadIdentity); so is a root-owned one:
    // the pod never runs as root, nor as some default uid that does not own the user's files.
    const id = await workloadIdentity(s.homeRoot, user, { allowRoot: true });
    if (id.uid === 0 || id.gid === 0) {
      throw new PermanentBackendError(
        `refusing to start a pod for ${user}: their home ${id.home} belongs to uid ${id.uid}, gid ${id.gid} (root); ` +
          "give the home to the user (chown), or set runAsUser in the profile's kubernetes block, or kubernetes.run_as_user for a shared uid",
      );
    }
    opts.homeOwner = { uid: id.uid, gid: id.gid };
  }
  // Never an invented uid (such as 1000) that does not own the user's files.
  if (spec.overrides?.runAsUser === undefined && !opts.homeOwner && opts.defaultRunAsUser === undefined) {
    throw new PermanentBackendError(
      `kubernetes backend: no uid for pod ${spec.name}: pods run as the owner of the user's home (SPAWNGATE_HOME_ROOT/<user>), a profile's runAsUser, or kubernetes.run_as_user`,
    );
  }
  return opts;
}
