/**
 * Public surface of the backends folder: the `Backend` contract and its implementations.
 * Other folders import only from here.
 */
export * from './types';
export * from './connection-secret';
export { workloadIdentity, type WorkloadIdentity, type WorkloadIdentityOptions } from './support/workload-identity';
export { isValidWorkloadName } from './support/names';
export { escapeName, unescapeName, nameSlug, isHashedSlug } from './support/name-escape';
export * from './local';
export * from './docker';
export * from './kubernetes';
