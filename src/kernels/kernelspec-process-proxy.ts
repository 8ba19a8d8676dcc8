/**
 * Enterprise Gateway's `metadata.process_proxy` in a kernelspec: which backend its `class_name`
 * stands for, and the `config` fields spawngate honours (image, executor image, port range). The
 * authorization lists are read with the rest of the kernelspec (kernelspec.ts).
 */
import { z } from 'zod';

const PROXIES = 'enterprise_gateway.services.processproxies.';

/** EG process proxy classes → the spawngate backend that runs their kernels the same way. */
const BACKEND_OF_CLASS: Readonly<Record<string, string>> = {
  [`${PROXIES}processproxy.LocalProcessProxy`]: 'local',
  // Distributed runs kernels on remote hosts over ssh; here the host is this one.
  [`${PROXIES}distributed.DistributedProcessProxy`]: 'local',
  [`${PROXIES}docker_swarm.DockerProcessProxy`]: 'docker',
  [`${PROXIES}docker_swarm.DockerSwarmProcessProxy`]: 'docker',
  [`${PROXIES}k8s.KubernetesProcessProxy`]: 'kubernetes',
};

/** `lo..hi` as EG writes it; `0..0` means any port. */
const portRangeSchema = z.string().regex(/^\d{1,5}\.\.\d{1,5}$/);

const processProxySchema = z.looseObject({
  class_name: z.string().optional(),
  config: z
    .looseObject({
      image_name: z.string().min(1).max(512).optional(),
      executor_image_name: z.string().min(1).max(512).optional(),
      port_range: portRangeSchema.optional(),
    })
    .optional(),
});

export interface ProcessProxy {
  className: string | undefined;
  /** The backend `className` stands for; undefined when no class is named. */
  backend: string | undefined;
  imageName: string | undefined;
  executorImageName: string | undefined;
  portRange: string | undefined;
}

export class ProcessProxyError extends Error {
  override readonly name = 'ProcessProxyError';
}

/** Reads `metadata.process_proxy`; throws `ProcessProxyError` for a class spawngate has no backend for, or a bad field. */
export function processProxyOf(metadata: Record<string, unknown>, kernelName: string): ProcessProxy {
  const parsed = processProxySchema.safeParse(metadata.process_proxy ?? {});
  if (!parsed.success) {
    throw new ProcessProxyError(`kernelspec '${kernelName}' has an invalid metadata.process_proxy: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  const { class_name: className, config } = parsed.data;
  let backend: string | undefined;
  if (className !== undefined) {
    backend = BACKEND_OF_CLASS[className];
    if (backend === undefined) throw new ProcessProxyError(`kernelspec '${kernelName}' names process proxy '${className}', which spawngate has no backend for`);
  }
  if (config?.port_range !== undefined) {
    const [lo, hi] = config.port_range.split('..').map(Number) as [number, number];
    if (hi > 65535 || lo > hi) throw new ProcessProxyError(`kernelspec '${kernelName}' has an invalid port_range '${config.port_range}'`);
  }
  return { className, backend, imageName: config?.image_name, executorImageName: config?.executor_image_name, portRange: config?.port_range };
}

/** Refuses a kernelspec whose process proxy stands for another backend than the configured one. */
export function assertProxyFitsBackend(proxy: ProcessProxy, kernelName: string, backendName: string): void {
  if (proxy.backend !== undefined && proxy.backend !== backendName) {
    throw new ProcessProxyError(
      `kernelspec '${kernelName}' names process proxy '${proxy.className}', which runs on the ${proxy.backend} backend; this spawngate runs the ${backendName} backend`,
    );
  }
}
