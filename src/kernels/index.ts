/**
 * Public surface of `src/kernels/`: kernelspec discovery in the home tree, its index and authorization
 * (this folder); the kernel lifecycle — launch with quota and fair-share checks, operations, culling,
 * reconcile, the kernel spec builder (`lifecycle/`); and the websocket ⇄ ZMQ bridge (`channels/`).
 * Other folders import only from here.
 */
import type { Config } from '../config';
import { logger as defaultLogger } from '../logging';
import { KernelspecCatalog } from './catalog';
import type { KernelFs } from './fs-layer';
import { KernelspecIndex, type KernelspecIndexOptions } from './kernelspec-index';
import type { KernelLogger } from './scan';

export {
  KernelspecCatalog,
  type KernelspecCatalogOptions,
  type KernelspecListing,
  type KernelspecModel,
  type KernelspecResource,
  type ResolvedKernelspec,
} from './catalog';
export { KernelspecIndex, type KernelspecIndexOptions, type KernelspecIndexStats } from './kernelspec-index';
export { isAuthorizedFor, PolicyRules, type KernelspecPolicy } from './authorization';
export {
  contentTypeOf,
  InvalidKernelJsonError,
  parseKernelJson,
  type DiscoveredKernelspec,
  type KernelspecFile,
  type KernelspecSource,
  type ParsedKernelJson,
} from './kernelspec';
export { assertProxyFitsBackend, processProxyOf, ProcessProxyError, type ProcessProxy } from './kernelspec-process-proxy';
export {
  GatewayUserDeniedError,
  InvalidUsernameError,
  KernelspecForbiddenError,
  KernelspecNotFoundError,
  KernelspecResourceNotFoundError,
} from './errors';
export {
  assertValidUsername,
  condaKernelName,
  isValidKernelName,
  isValidResourceName,
  usernameProblem,
} from './names';
export { nodeFs, type KernelFs, type StatLike } from './fs-layer';
export type { KernelLogger } from './scan';
export * from './lifecycle';
export { kernelWebSocketServerOptions, KernelClient, type KernelConnectionInfo } from './channels';

export interface CreateKernelspecCatalogOptions extends Omit<
  KernelspecIndexOptions,
  'homeRoot' | 'sharedDirs' | 'fs' | 'logger'
> {
  fs?: KernelFs;
  logger?: KernelLogger;
  /** Prefix of resource URLs in the models (default `''`: `/kernelspecs/<name>/<file>`). */
  resourceUrlPrefix?: string;
}

/**
 * The catalogue for a loaded configuration: homes under `SPAWNGATE_HOME_ROOT`, admin kernelspecs from
 * `SPAWNGATE_SHARED_KERNELS`, policy from the file's `kernels:` block.
 */
export function createKernelspecCatalog(
  config: Config,
  opts: CreateKernelspecCatalogOptions = {},
): KernelspecCatalog {
  const { fs, logger, resourceUrlPrefix, ...indexOpts } = opts;
  const index = new KernelspecIndex({
    ...indexOpts,
    homeRoot: config.env.SPAWNGATE_HOME_ROOT,
    sharedDirs: config.sharedKernelDirs,
    fs,
    logger: logger ?? defaultLogger,
  });
  const k = config.file.kernels;
  return new KernelspecCatalog({
    index,
    fs,
    resourceUrlPrefix,
    policy: {
      defaultKernel: k.default_kernel,
      allowedKernels: k.allowed_kernels,
      deniedKernels: k.denied_kernels,
      allowedUsers: k.allowed_users,
      deniedUsers: k.denied_users,
    },
  });
}
