export { createKernelService, KERNEL_LAUNCH_JOB, KERNEL_CULL_JOB, type KernelService, type KernelServiceDeps } from './kernel-service';
export { buildKernelSpec, kernelImage, kernelWorkloadName, KERNEL_WORKLOAD_PREFIX, type KernelSpecInput } from './kernel-spec';
export { KernelLaunchError, KernelNotFoundError, KernelQuotaError, KernelRequestError } from './errors';
export { toKernelModel, jupyterTimestamp, type KernelModel } from './kernel-model';
export { filterKernelEnv, launchTimeoutFrom, MAX_VALUE_BYTES, MAX_VARIABLES } from './env-hygiene';
export { grantFor, limitVariables } from './quota-check';
export { CONTAINER_KERNEL_PORTS, connectionInfo } from './connection-files';
export { kernelRuntimeDir, runtimeRootOf, MAX_SOCKET_PATH_BYTES } from './runtime-dir';
export { usesResponseAddress } from './argv-placeholders';
