/**
 * The kernelspec catalogue one user sees: the index's shared and per-user kernelspecs combined with
 * the precedence rule, filtered by `authorization.ts`, rendered in Enterprise Gateway's shapes, and
 * resolved for the launch path.
 *
 * Precedence on a name clash: a shared (admin) kernelspec owns its name — a user's kernelspec of the
 * same name is never offered to that user, even when the shared one is not authorized for them (the
 * name then answers 403). Within a home, conda kernelspecs win over `~/.local` ones; among shared
 * directories, the earlier one in `SPAWNGATE_SHARED_KERNELS` wins.
 *
 * Default kernel: `kernels.default_kernel` if this user can see it, else `python3` if visible, else
 * the first visible name in sort order, else the configured name (or `python3`) — always a string,
 * because jupyter_server assigns it to a trait that refuses null.
 */
import { PolicyRules, isAuthorizedFor, type KernelspecPolicy } from './authorization';
import {
  GatewayUserDeniedError,
  KernelspecForbiddenError,
  KernelspecNotFoundError,
  KernelspecResourceNotFoundError,
} from './errors';
import { nodeFs, readConfinedFile, type KernelFs } from './fs-layer';
import type { KernelspecIndex } from './kernelspec-index';
import {
  contentTypeOf,
  type DiscoveredKernelspec,
  type KernelspecFile,
  type KernelspecSource,
} from './kernelspec';
import { assertValidUsername, isValidKernelName, isValidResourceName } from './names';
import { describeFailure } from './scan';

/** The REST model of one kernelspec (`/api/kernelspecs/{name}`), as jupyter_server/EG build it. */
export interface KernelspecModel {
  name: string;
  spec: KernelspecFile;
  /** Key → URL `<prefix>/kernelspecs/<name>/<file>`. */
  resources: Record<string, string>;
}

export interface KernelspecListing {
  default: string;
  /** Visible kernelspecs, sorted by name. */
  kernelspecs: readonly DiscoveredKernelspec[];
}

/** What the launch path needs: the spec, where it lives, and which environment it runs in. */
export interface ResolvedKernelspec {
  name: string;
  source: KernelspecSource;
  spec: KernelspecFile;
  /** Environment name for the quota lookup, or null (no environment: see `kernels.unregistered_environments`). */
  environment: string | null;
  /** Real path of the kernel directory (the kernel's resource dir). */
  dir: string;
  /** The user it was resolved for; undefined for an admin/hub token naming nobody. */
  user: string | undefined;
}

export interface KernelspecResource {
  data: Buffer;
  contentType: string;
}

export interface KernelspecCatalogOptions {
  index: KernelspecIndex;
  policy?: KernelspecPolicy;
  /** Prefix of resource URLs in the models, e.g. `''` → `/kernelspecs/<name>/logo-64x64.png`. */
  resourceUrlPrefix?: string;
  /** Largest resource file served, bytes. Default 4 MiB. */
  maxResourceBytes?: number;
  fs?: KernelFs;
}

export class KernelspecCatalog {
  readonly index: KernelspecIndex;
  private readonly rules: PolicyRules;
  private readonly prefix: string;
  private readonly maxResourceBytes: number;
  private readonly fs: KernelFs;
  /** Serialized models, computed once per indexed kernelspec (freed with it). */
  private readonly json = new WeakMap<DiscoveredKernelspec, string>();

  constructor(opts: KernelspecCatalogOptions) {
    this.index = opts.index;
    this.rules = new PolicyRules(opts.policy ?? {});
    this.prefix = (opts.resourceUrlPrefix ?? '').replace(/\/+$/, '');
    this.maxResourceBytes = opts.maxResourceBytes ?? 4 * 1024 * 1024;
    this.fs = opts.fs ?? nodeFs;
  }

  /**
   * The kernelspecs `user` may use (shared ones they are authorized for, then their own), or with
   * `user` undefined the unrestricted shared ones. Throws `InvalidUsernameError` (400) and
   * `GatewayUserDeniedError` (403).
   */
  async list(user: string | undefined): Promise<KernelspecListing> {
    if (user !== undefined) this.checkUser(user);
    const [shared, own] = await Promise.all([
      this.index.sharedKernels(),
      user === undefined
        ? Promise.resolve([] as readonly DiscoveredKernelspec[])
        : this.index.userKernels(user),
    ]);
    const visible: DiscoveredKernelspec[] = [];
    let i = 0;
    let j = 0;
    // Both lists are sorted by name: merge, the shared entry owning a clashing name.
    while (i < shared.length || j < own.length) {
      const s = shared[i];
      const o = own[j];
      let k: DiscoveredKernelspec;
      if (o === undefined || (s !== undefined && s.name <= o.name)) {
        k = s as DiscoveredKernelspec;
        i++;
        if (o !== undefined && o.name === k.name) j++; // shadowed user kernelspec
      } else {
        k = o;
        j++;
      }
      if (this.rules.kernelNameAllowed(k.name) && isAuthorizedFor(k, user)) visible.push(k);
    }
    return { default: this.pickDefault(visible), kernelspecs: visible };
  }

  /**
   * Resolves a kernelspec name for a user — the launch path's entry point. Throws
   * `InvalidUsernameError`, `GatewayUserDeniedError`, `KernelspecNotFoundError` (unknown, or a name the
   * configuration never offers) and `KernelspecForbiddenError` (EG authorization lists).
   */
  async resolve(user: string | undefined, name: string): Promise<ResolvedKernelspec> {
    const k = await this.find(user, name);
    return { name: k.name, source: k.source, spec: k.spec, environment: k.environment, dir: k.dir, user };
  }

  /** The REST model of one kernelspec for `user`; same errors as `resolve`. */
  async model(user: string | undefined, name: string): Promise<KernelspecModel> {
    return JSON.parse(this.modelJson(await this.find(user, name))) as KernelspecModel;
  }

  /**
   * Reads a resource file of a kernelspec `user` may use. The file must be a regular file directly in
   * the kernel directory, resolving inside the home (user kernelspecs) or the kernel directory (shared
   * ones). Throws the `resolve` errors and `KernelspecResourceNotFoundError`.
   */
  async resource(user: string | undefined, name: string, file: string): Promise<KernelspecResource> {
    const k = await this.find(user, name);
    if (!isValidResourceName(file))
      throw new KernelspecResourceNotFoundError(name, file, 'not a valid resource name');
    try {
      const { data } = await readConfinedFile(this.fs, `${k.dir}/${file}`, k.root, this.maxResourceBytes);
      return { data, contentType: contentTypeOf(file) };
    } catch (err) {
      throw new KernelspecResourceNotFoundError(name, file, describeFailure(err));
    }
  }

  /** `{"default": …, "kernelspecs": {name: model}}` as a JSON string (models are serialized once and reused). */
  listingJson(listing: KernelspecListing): string {
    const parts = listing.kernelspecs.map((k) => `${JSON.stringify(k.name)}:${this.modelJson(k)}`);
    return `{"default":${JSON.stringify(listing.default)},"kernelspecs":{${parts.join(',')}}}`;
  }

  /** One model as a JSON string. */
  modelJson(k: DiscoveredKernelspec): string {
    let s = this.json.get(k);
    if (s === undefined) {
      const resources: Record<string, string> = {};
      const base = `${this.prefix}/kernelspecs/${encodeURIComponent(k.name)}/`;
      for (const [key, file] of Object.entries(k.resources)) resources[key] = base + encodeURIComponent(file);
      s = JSON.stringify({ name: k.name, spec: k.spec, resources });
      this.json.set(k, s);
    }
    return s;
  }

  private checkUser(user: string): void {
    assertValidUsername(user);
    if (!this.rules.userAllowed(user)) throw new GatewayUserDeniedError(user);
  }

  private async find(user: string | undefined, name: string): Promise<DiscoveredKernelspec> {
    if (user !== undefined) this.checkUser(user);
    if (!isValidKernelName(name) || !this.rules.kernelNameAllowed(name))
      throw new KernelspecNotFoundError(name);
    const shared = await this.index.sharedKernels();
    let k = findByName(shared, name);
    if (k === undefined && user !== undefined) k = findByName(await this.index.userKernels(user), name);
    if (k === undefined) throw new KernelspecNotFoundError(name);
    if (!isAuthorizedFor(k, user)) throw new KernelspecForbiddenError(name, user);
    return k;
  }

  private pickDefault(visible: readonly DiscoveredKernelspec[]): string {
    const configured = this.rules.policy.defaultKernel;
    if (configured !== undefined && visible.some((k) => k.name === configured)) return configured;
    if (visible.some((k) => k.name === 'python3')) return 'python3';
    return visible[0]?.name ?? configured ?? 'python3';
  }
}

function findByName(list: readonly DiscoveredKernelspec[], name: string): DiscoveredKernelspec | undefined {
  let lo = 0;
  let hi = list.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const k = list[mid] as DiscoveredKernelspec;
    if (k.name === name) return k;
    if (k.name < name) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}
