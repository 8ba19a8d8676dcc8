/**
 * The docker backend's options from spawngate's configuration: the YAML `docker:` section, the home
 * root, and DOCKER_HOST (read by dockerode itself when no connection is given).
 */
import type { Config } from '../../config';
import type { Logger } from '../../logging';
import type { DockerBackendOptions } from './options';

export function dockerOptionsFromConfig(config: Config, logger: Logger): DockerBackendOptions {
  const d = config.file.docker;
  return {
    network: d.network,
    networkPerUser: d.network_per_user,
    attachContainers: d.attach_containers,
    publishHost: d.publish_host,
    // Homes appear at the same path inside containers: kernelspec argv and HOME name host paths.
    homeRoot: config.env.SPAWNGATE_HOME_ROOT,
    extraBinds: d.extra_binds,
    pull: d.pull,
    runAsUser: d.run_as_user,
    runAsGroup: d.run_as_group,
    allowRoot: d.allow_root,
    labelPrefix: d.label_prefix,
    init: d.init,
    logger: logger.child({ component: 'backend-docker' }),
  };
}
