/**
 * Public surface of src/spawner-api, the HTTP edge: the app, the route groups the composition root
 * mounts (hub/, gateway/, admin/), the identity resolver shared by HTTP and the websocket upgrade
 * (auth/), and the one error mapper.
 */
export { createApp, createWorkerApp, type AppDeps } from './app';
export { createHubServerRouter, toServerModel } from './hub/servers';
export { HttpError } from './errors';
export { toHttpAnswer, errorBody, type HttpAnswer } from './error-mapper';
export { actingUser, HUB_TOKEN_NOT_FOR_GATEWAY, type Identity } from './auth/identity';
export { createIdentityResolver, headerToken, type IdentityResolver, type IdentityResolverOptions } from './auth/resolve-identity';
export { buildOpenApiDocument } from './openapi';
export { createGatewayKernelRouter } from './gateway/kernels';
export { createKernelspecRouter } from './gateway/kernelspecs';
export { createKernelChannelsHandler } from './gateway/kernel-channels';
export { createAdminRouter } from './admin/routes';
export { createAdminPageRouter, adminUiDir } from './admin-page';
export { createRawTargetListener } from './raw-target';
