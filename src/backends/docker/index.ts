/**
 * The `docker` backend's public surface: workloads as containers through the Docker Engine API
 * (Docker, or podman's compatible service). See docker-backend.ts for the behaviour and
 * container-spec.ts for how a spec becomes a container.
 */
export { createDockerBackend, DOCKER_BACKEND_NAME, type DockerBackend } from './docker-backend';
export type { DockerBackendLogger, DockerBackendOptions, DockerSpecOverrides } from './options';
export { dockerOptionsFromConfig } from './from-config';
