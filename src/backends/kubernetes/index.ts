/**
 * The `kubernetes` backend's public surface: workloads as Pods (kubernetes-backend.ts, one namespace;
 * namespaces.ts, one per experiment), the manifests it creates (manifests.ts, for dry runs), its options
 * from spawngate's configuration (options.ts) and how it reads pods.
 */
export { createKubernetesBackend, KUBERNETES_BACKEND_NAME, KUBERNETES_CAPABILITIES, type KubernetesBackend } from './kubernetes-backend';
export type { KubernetesBackendLogger, KubernetesBackendOptions } from './backend-options';
export type { KubeconfigSource } from './client';
export {
  buildPodSecret,
  buildPod,
  managedSelector,
  labelValueFor,
  type HomeMount,
  type KubernetesOverrides,
  type PodManifestOptions,
  type PodPlan,
} from './manifests';
export { podManifestOptions, type PodSettings } from './pod-options';
export {
  createNamespacedKubernetesBackend,
  experimentNamespace,
  namespaceFor,
  EXPERIMENT_LABEL,
  type ExperimentNamespaces,
  type NamespacedBackendOptions,
} from './namespaces';
export { kubernetesNamespace, kubernetesOptionsFromConfig, type KubernetesFromConfig } from './options';
