/** The YAML `kubernetes:` section: namespaces and pod defaults of the kubernetes backend. */
import { z } from 'zod';

export const kubernetesConfigSchema = z
  .object({
    namespace: z
      .string()
      .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'namespace must be a DNS label')
      .optional()
      .describe('namespace of server and kernel pods (default: SPAWNGATE_KUBERNETES_NAMESPACE, else the in-cluster namespace, else default)'),
  })
  .strict();
export type KubernetesConfig = z.infer<typeof kubernetesConfigSchema>;
