/** Picks the configured backend. Docker and Kubernetes arrive with their own issues. */
import path from 'node:path';
import {
  createDockerBackend,
  createLocalBackend,
  createNamespacedKubernetesBackend,
  dockerOptionsFromConfig,
  kubernetesOptionsFromConfig,
  type Backend,
} from '../backends';
import type { Config } from '../config';
import { ConfigError } from '../config';
import type { Db } from '../db';
import type { Logger } from '../logging';

export function createBackend(config: Config, logger: Logger, db?: Db): Backend {
  switch (config.env.SPAWNGATE_BACKEND) {
    case 'local':
      return createLocalBackend({ stateDir: path.join(config.dataDir, 'local'), logger });
    case 'docker':
      // Where the engine is comes from DOCKER_HOST (dockerode reads it); nothing is contacted yet.
      return createDockerBackend(dockerOptionsFromConfig(config, logger));
    case 'kubernetes':
      // Credentials from kubernetes.kubeconfig, else KUBECONFIG / ~/.kube/config / in-cluster; the API is
      // first contacted by the start-up reconcile. Experiment namespaces: every experiment in the database.
      return createNamespacedKubernetesBackend(
        kubernetesOptionsFromConfig(config, {
          logger: logger.child({ component: 'backend-kubernetes' }),
          ...(db ? { discoverExperiments: async () => (await db.query<{ name: string }>('SELECT name FROM experiments ORDER BY id')).map((r) => r.name) } : {}),
        }),
      );
    default:
      throw new ConfigError(`SPAWNGATE_BACKEND: the '${config.env.SPAWNGATE_BACKEND}' backend is not available in this build yet`);
  }
}
