export { loadConfig, ConfigError, type Config } from './load';
export {
  envSchema,
  fileConfigSchema,
  profileSchema,
  resourcesSchema,
  type EnvConfig,
  type FileConfig,
  type Profile,
  type Resources,
} from './schema';
export { dockerConfigSchema, type DockerConfig } from './docker-schema';
export { kernelPodSchema, kubernetesConfigSchema, kubernetesOverridesSchema, type KernelPodOverrides, type KubernetesConfig, type KubernetesOverrides } from './kubernetes-schema';
export { oidcConfigSchema, ASYMMETRIC_JWS_ALGORITHMS, type OidcConfig } from './oidc-schema';
export { fileConfigJsonSchema } from './json-schema';
export { SECRET_SETTINGS } from './secret-files';
export { MIN_CPU_CORES } from './schema';
export * as k8sRules from './k8s-validation';
export type { EnvNameRule } from './k8s-validation';
