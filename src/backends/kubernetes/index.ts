/**
 * The `kubernetes` backend's public surface: workloads as Pods in one namespace (see
 * kubernetes-backend.ts), the manifests it creates (manifests.ts, for dry runs) and how it reads them.
 */
export {
  createKubernetesBackend,
  KUBERNETES_BACKEND_NAME,
  type KubernetesBackend,
  type KubernetesBackendLogger,
  type KubernetesBackendOptions,
} from './kubernetes-backend';
export type { KubeconfigSource } from './client';
export {
  buildConnectionSecret,
  buildPod,
  managedSelector,
  sanitizeLabelValue,
  type KubernetesOverrides,
  type PodManifestOptions,
  type PodPlan,
} from './manifests';
