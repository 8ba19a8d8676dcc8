/**
 * The YAML `docker:` section: how the docker backend shapes containers. Where the engine is comes from
 * the standard DOCKER_HOST variable (unix:// or tcp://, with DOCKER_TLS_VERIFY / DOCKER_CERT_PATH),
 * as every Docker client reads it; unset means /var/run/docker.sock.
 */
import { z } from 'zod';

/** `host:container[:options]` with absolute paths on both sides (Docker's Binds syntax). */
const bindSchema = z
  .string()
  .regex(/^\/[^:]*:\/[^:]*(:[a-z,]+)?$/, 'a bind mount is "/host/path:/container/path[:ro]"');

export const dockerConfigSchema = z
  .object({
    network: z
      .string()
      .min(1)
      .optional()
      .describe('user-defined network for every container; spawngate must be on it too (default: publish ports on publish_host)'),
    network_per_user: z
      .boolean()
      .default(true)
      .describe("each user's containers join a network of their own (<network or label_prefix>-<user>-<hash>, created on demand), so they cannot reach another user's; false: one shared network"),
    attach_containers: z
      .array(z.string().min(1))
      .default([])
      .describe("containers connected to every user's network (spawngate's and the hub's, when they run in containers on the engine and reach workloads by address)"),
    publish_host: z
      .string()
      .min(1)
      .default('127.0.0.1')
      .describe('host address container ports are published on when no network is set'),
    extra_binds: z
      .array(bindSchema)
      .default([])
      .describe('bind mounts added to every container, "/host:/container[:ro]" (e.g. a shared software tree)'),
    pull: z.boolean().default(true).describe('pull an image that is not present before creating a container'),
    run_as_user: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe("uid containers run as (default: the owner of the user's home directory)"),
    run_as_group: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe("gid containers run as (default: the group of the user's home directory)"),
    allow_root: z
      .boolean()
      .default(false)
      .describe('let containers run as uid/gid 0 (a root-owned home is otherwise refused)'),
    label_prefix: z
      .string()
      .regex(/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/, 'a label prefix is lower-case letters, digits, dots and dashes')
      .default('spawngate')
      .describe('prefix of the labels marking spawngate\'s containers (<prefix>.managed=true); one per spawngate installation'),
    init: z.boolean().default(true).describe('run an init process as PID 1 (forwards signals, reaps zombies)'),
  })
  .strict();
export type DockerConfig = z.infer<typeof dockerConfigSchema>;
