export { createApp, type AppDeps } from './app';
export { createHubServerRouter, toServerModel } from './routes/hub-servers';
export { HttpError } from './errors';
export type { Identity } from './identity';
export { buildOpenApiDocument } from './openapi';
export { createGatewayKernelRouter, kernelHttpError } from './routes/gateway-kernels';
export { createKernelspecRouter } from './routes/kernelspecs';
export { createKernelChannelsHandler } from './kernel-channels';
export { createAdminRouter } from './routes/admin';
