export { createKernelService, kernelWorkloadName, KERNEL_LAUNCH_JOB, KERNEL_CULL_JOB, type KernelService, type KernelServiceDeps } from './kernel-service';
export { KernelLaunchError, KernelNotFoundError, KernelQuotaError, KernelRequestError } from './errors';
export { toKernelModel, jupyterTimestamp, type KernelModel } from './kernel-model';
export { filterKernelEnv, launchTimeoutFrom, MAX_VALUE_BYTES, MAX_VARIABLES } from './env-hygiene';
export { grantFor, limitVariables } from './quota-check';
export { CONTAINER_KERNEL_PORTS } from './connection-files';
