/** Builds the configured backend (SPAWNGATE_BACKEND) from the configuration; nothing is contacted yet. */
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
import { listExperimentNames, type Db } from '../db';
import type { Logger } from '../logging';

export function createBackend(config: Config, logger: Logger, db?: Db): Backend {
  switch (config.env.SPAWNGATE_BACKEND) {
    case 'local': {
      const local = createLocalBackend({
        stateDir: path.join(config.dataDir, 'local'),
        logger,
        identity: {
          homeRoot: config.env.SPAWNGATE_HOME_ROOT,
          shared: config.env.SPAWNGATE_LOCAL_SHARED_IDENTITY,
          allowRoot: config.env.SPAWNGATE_LOCAL_ALLOW_ROOT,
        },
      });
      const warning = local.sharedIdentityWarning();
      if (warning) logger.warn(`local backend: ${warning}`);
      return local;
    }
    case 'docker':
      // Where the engine is comes from DOCKER_HOST (dockerode reads it); nothing is contacted yet.
      return createDockerBackend(dockerOptionsFromConfig(config, logger));
    case 'kubernetes':
      // Credentials from kubernetes.kubeconfig, else KUBECONFIG / ~/.kube/config / in-cluster; the API is
      // first contacted by the start-up reconcile. Experiment namespaces: every experiment in the database.
      return createNamespacedKubernetesBackend(
        kubernetesOptionsFromConfig(config, {
          logger: logger.child({ component: 'backend-kubernetes' }),
          ...(db ? { discoverExperiments: () => listExperimentNames(db) } : {}),
        }),
      );
    default:
      // The env schema admits only the cases above; this guards a schema change that forgets the factory.
      throw new ConfigError(`SPAWNGATE_BACKEND: unknown backend '${String(config.env.SPAWNGATE_BACKEND)}'`);
  }
}
