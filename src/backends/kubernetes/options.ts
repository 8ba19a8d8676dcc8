/**
 * The kubernetes backend's options from spawngate's configuration: the YAML `kubernetes:` section,
 * `SPAWNGATE_KUBERNETES_NAMESPACE` and `SPAWNGATE_HOME_ROOT`. Used by the service and by the dry run.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../../config';
import type { KubeconfigSource } from './client';
import type { KubernetesBackendLogger } from './backend-options';
import type { NamespacedBackendOptions } from './namespaces';

/** Where a pod's service account namespace is mounted (present only in-cluster). */
export const IN_CLUSTER_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

function inClusterNamespace(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * The namespace: YAML `kubernetes.namespace`, else `SPAWNGATE_KUBERNETES_NAMESPACE`, else the in-cluster
 * service account's, else `default`. (The kubeconfig context's namespace is not consulted: which
 * namespace pods land in must not depend on a developer's current context.)
 */
export function kubernetesNamespace(config: Config, inClusterFile = IN_CLUSTER_NAMESPACE_FILE): string {
  return config.file.kubernetes.namespace ?? config.env.SPAWNGATE_KUBERNETES_NAMESPACE ?? inClusterNamespace(inClusterFile) ?? 'default';
}

export interface KubernetesFromConfig {
  logger?: KubernetesBackendLogger;
  /** Experiments whose namespaces are watched from the start (with `experiment_namespaces`). */
  discoverExperiments?: () => Promise<string[]>;
}

export function kubernetesOptionsFromConfig(config: Config, extra: KubernetesFromConfig = {}): NamespacedBackendOptions {
  const k = config.file.kubernetes;
  const kubeconfig: KubeconfigSource = k.kubeconfig ? { from: 'file', path: path.resolve(k.kubeconfig) } : { from: 'default' };
  return {
    namespace: kubernetesNamespace(config),
    kubeconfig,
    // An explicit run_as_user is a shared identity the admin chose; otherwise homes decide (DESIGN §3).
    ...(k.run_as_user !== undefined ? { defaultRunAsUser: k.run_as_user } : { homeRoot: path.resolve(config.env.SPAWNGATE_HOME_ROOT) }),
    ...(k.run_as_group !== undefined ? { defaultRunAsGroup: k.run_as_group } : {}),
    defaultRequestFraction: k.default_request_fraction,
    failUnschedulable: k.fail_unschedulable,
    ...(k.instance ? { instance: k.instance } : {}),
    ...(k.home_volume
      ? { home: { claimName: k.home_volume.claim_name, root: path.resolve(config.env.SPAWNGATE_HOME_ROOT), readOnly: k.home_volume.read_only } }
      : {}),
    ...(k.experiment_namespaces
      ? {
          experimentNamespaces: {
            template: k.experiment_namespaces.template,
            maxNamespaces: k.experiment_namespaces.max_namespaces,
            ...(extra.discoverExperiments ? { discover: extra.discoverExperiments } : {}),
          },
        }
      : {}),
    ...(extra.logger ? { logger: extra.logger } : {}),
  };
}
