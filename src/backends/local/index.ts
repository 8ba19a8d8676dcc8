/**
 * The `local` backend's public surface: workloads as detached child processes on this machine.
 * See local-backend.ts for the behaviour, identity.ts for whose identity workloads run with, and
 * launch.ts for which resource limits are enforced.
 */
export { createLocalBackend, LOCAL_BACKEND_NAME } from './local-backend';
export type { LocalBackend, LocalBackendLogger, LocalBackendOptions } from './options';
export { ALLOW_ROOT_SETTING, SHARED_IDENTITY_SETTING, type LocalIdentityOptions } from './identity';
