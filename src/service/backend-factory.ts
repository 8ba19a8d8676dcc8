/** Picks the configured backend. Docker and Kubernetes arrive with their own issues. */
import path from 'node:path';
import { createDockerBackend, createLocalBackend, dockerOptionsFromConfig, type Backend } from '../backends';
import type { Config } from '../config';
import { ConfigError } from '../config';
import type { Logger } from '../logging';

export function createBackend(config: Config, logger: Logger): Backend {
  switch (config.env.SPAWNGATE_BACKEND) {
    case 'local':
      return createLocalBackend({ stateDir: path.join(config.dataDir, 'local'), logger });
    case 'docker':
      // Where the engine is comes from DOCKER_HOST (dockerode reads it); nothing is contacted yet.
      return createDockerBackend(dockerOptionsFromConfig(config, logger));
    default:
      throw new ConfigError(`SPAWNGATE_BACKEND: the '${config.env.SPAWNGATE_BACKEND}' backend is not available in this build yet`);
  }
}
