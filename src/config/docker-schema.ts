/** The YAML `docker:` section: how the docker backend reaches the engine and shapes containers. */
import { z } from 'zod';

export const dockerConfigSchema = z
  .object({
    network: z
      .string()
      .min(1)
      .optional()
      .describe('user-defined network for every container; spawngate must be on it too (default: publish ports on publish_host)'),
    publish_host: z.string().default('127.0.0.1').describe('host address container ports are published on when no network is set'),
  })
  .strict();
export type DockerConfig = z.infer<typeof dockerConfigSchema>;
