/** zod schemas of the hub API: request validation at the edge, response types, and the OpenAPI document. */
import { z } from 'zod';

const ENV_KEY = /^[A-Za-z_][A-Za-z0-9_]{0,255}$/;
const MAX_ENV_TOTAL = 256 * 1024;

export const startRequestSchema = z
  .object({
    env: z
      .record(z.string().regex(ENV_KEY, 'environment variable names are letters, digits and _'), z.string().max(32 * 1024))
      .default({})
      .refine((env) => Object.entries(env).reduce((n, [k, v]) => n + k.length + v.length, 0) <= MAX_ENV_TOTAL, {
        message: `environment larger than ${MAX_ENV_TOTAL / 1024} KiB`,
      })
      .describe("the hub's environment for the server (JUPYTERHUB_*, the user's own variables)"),
    user_options: z.record(z.string(), z.unknown()).default({}).describe('options chosen in the spawn form'),
    args: z.array(z.string().max(4096)).max(100).default([]).describe('extra arguments for the single-user command'),
    start_timeout: z.number().positive().max(3600).optional().describe('seconds the server may take to be ready'),
  })
  .strict();
export type StartRequestBody = z.infer<typeof startRequestSchema>;

export const serverStateSchema = z.enum(['pending', 'running', 'stopping', 'stopped', 'failed']);

export const serverModelSchema = z.object({
  user: z.string(),
  name: z.string().describe('server name, "" for the default server'),
  state: serverStateSchema,
  generation: z.number().int().describe('increases with every start'),
  url: z.string().nullable().describe('address the server binds, reachable by the hub proxy'),
  exit_code: z.number().int().nullable(),
  message: z.string().nullable().describe("backend's reason when failed"),
  last_output: z.array(z.string()).describe("the server's last output lines when it failed"),
  profile: z.string().nullable(),
  started_at: z.string().nullable(),
  stopped_at: z.string().nullable(),
});
export type ServerModel = z.infer<typeof serverModelSchema>;

export const profileModelSchema = z.object({
  slug: z.string(),
  display_name: z.string(),
  description: z.string(),
  default: z.boolean(),
  resources: z.object({
    cpu_request: z.number().optional(),
    cpu_limit: z.number().optional(),
    memory_request_mib: z.number().optional(),
    memory_limit_mib: z.number().optional(),
    gpu_limit: z.number().optional(),
  }),
});

export const progressEventSchema = z.object({
  progress: z.number().int().min(0).max(100),
  message: z.string(),
  ready: z.boolean().optional(),
  failed: z.boolean().optional(),
  url: z.string().optional(),
});

export const errorSchema = z.object({ reason: z.string(), message: z.string() });

export const waitQuerySchema = z.object({
  wait: z.enum(['ready', 'true']).optional(),
  timeout: z.coerce.number().min(0).max(60).default(30),
});

export const kernelModelSchema = z.object({
  id: z.uuid(),
  name: z.string().describe('kernelspec name'),
  last_activity: z.string().describe('YYYY-MM-DDTHH:MM:SS.ffffffZ'),
  execution_state: z.string().describe('starting, idle, busy, restarting or dead'),
  connections: z.number().int(),
});

export const kernelStartSchema = z.object({
  name: z.string().optional().describe('kernelspec name; the default kernelspec when absent'),
  env: z
    .record(z.string(), z.string())
    .optional()
    .describe('only KERNEL_* and allow-listed variables reach the kernel; KERNEL_USERNAME names the owner, KERNEL_LAUNCH_TIMEOUT (s) bounds the launch'),
});

export const kernelspecModelSchema = z.object({
  name: z.string(),
  spec: z.object({
    argv: z.array(z.string()),
    display_name: z.string(),
    language: z.string().optional(),
    env: z.record(z.string(), z.string()).optional(),
    interrupt_mode: z.enum(['signal', 'message']).optional(),
    metadata: z.record(z.string(), z.unknown()).optional(),
  }),
  resources: z.record(z.string(), z.string()).describe('resource name → URL under /kernelspecs/{name}/'),
});
