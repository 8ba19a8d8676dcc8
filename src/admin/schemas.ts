/**
 * zod schemas of admin inputs and outputs: the API validates with them, the CLI parses its options
 * through them, and the OpenAPI document is generated from them. Types are derived from the schemas.
 */
import { z } from 'zod';
import { MIN_CPU_CORES } from '../config';
import { NameError, usernameProblem, validateUsername } from '../profiles';
import { AdminError } from './errors';

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

export const resourceNameSchema = z
  .string()
  .min(1, 'must not be empty')
  .max(255, 'at most 255 characters')
  .refine((v) => v === v.trim(), 'must not start or end with spaces')
  .refine((v) => !CONTROL.test(v), 'must not contain control characters');

export const usernameSchema = z.string().superRefine((v, ctx) => {
  try {
    validateUsername(v);
  } catch (err) {
    if (!(err instanceof NameError)) throw err;
    ctx.addIssue({ code: 'custom', message: `${usernameProblem(v) ?? 'is not valid'} (the hub's user name rules)` });
  }
});

const cores = z
  .number({ error: 'a number of cores' })
  .min(MIN_CPU_CORES, 'at least 0.001 cores (1m): less renders as 0m, which Kubernetes treats as no limit')
  .max(4096, 'at most 4096 cores');
const mib = z.number({ error: 'a whole number of MiB' }).int('a whole number of MiB').positive('must be greater than 0').max(2 ** 31 - 1);
const gpus = z.number({ error: 'a whole number of GPUs' }).int('a whole number of GPUs').min(0, 'must not be negative').max(1024);

const limitsShape = {
  cpu_request: cores.describe('cores requested per kernel'),
  cpu_limit: cores.describe('cores limit per kernel'),
  memory_request_mib: mib.describe('memory requested per kernel, MiB'),
  memory_limit_mib: mib.describe('memory limit per kernel, MiB'),
  gpu_limit: gpus.describe('GPUs per kernel'),
};

const requestWithinLimit = (v: { cpu_request?: number; cpu_limit?: number; memory_request_mib?: number; memory_limit_mib?: number }) => [
  ...(v.cpu_request !== undefined && v.cpu_limit !== undefined && v.cpu_request > v.cpu_limit ? ['cpu_request must not exceed cpu_limit'] : []),
  ...(v.memory_request_mib !== undefined && v.memory_limit_mib !== undefined && v.memory_request_mib > v.memory_limit_mib
    ? ['memory_request_mib must not exceed memory_limit_mib']
    : []),
];

export const experimentCreateSchema = z
  .object({
    name: resourceNameSchema.describe('unique experiment name'),
    ...limitsShape,
    gpu_limit: limitsShape.gpu_limit.default(0),
    active: z.boolean().default(true),
  })
  .strict()
  .superRefine((v, ctx) => requestWithinLimit(v).forEach((message) => ctx.addIssue({ code: 'custom', message })));
export type ExperimentCreate = z.infer<typeof experimentCreateSchema>;

export const experimentUpdateSchema = z
  .object({
    name: resourceNameSchema.describe('new name').optional(),
    cpu_request: limitsShape.cpu_request.optional(),
    cpu_limit: limitsShape.cpu_limit.optional(),
    memory_request_mib: limitsShape.memory_request_mib.optional(),
    memory_limit_mib: limitsShape.memory_limit_mib.optional(),
    gpu_limit: limitsShape.gpu_limit.optional(),
    active: z.boolean().optional(),
  })
  .strict()
  .refine((v) => Object.keys(v).length > 0, 'nothing to change: give at least one field')
  .superRefine((v, ctx) => requestWithinLimit(v).forEach((message) => ctx.addIssue({ code: 'custom', message })));
export type ExperimentUpdate = z.infer<typeof experimentUpdateSchema>;

export const experimentSchema = z.object({
  name: z.string(),
  cpu_request: z.number(),
  cpu_limit: z.number(),
  memory_request_mib: z.number().int(),
  memory_limit_mib: z.number().int(),
  gpu_limit: z.number().int(),
  active: z.boolean(),
  environments: z.array(z.string()),
  members: z.number().int().describe('number of members'),
});
export type Experiment = z.infer<typeof experimentSchema>;

export const environmentCreateSchema = z
  .object({ name: resourceNameSchema.describe('conda environment name (the <env> of conda-env-<env>-<kernel>)'), experiment: resourceNameSchema })
  .strict();
export type EnvironmentCreate = z.infer<typeof environmentCreateSchema>;
export const environmentUpdateSchema = z.object({ experiment: resourceNameSchema.describe('move to this experiment') }).strict();
export type EnvironmentUpdate = z.infer<typeof environmentUpdateSchema>;
export const environmentSchema = z.object({ name: z.string(), experiment: z.string(), experiment_active: z.boolean() });
export type Environment = z.infer<typeof environmentSchema>;

const emailSchema = z.email('must look like name@domain').max(320);

export const userCreateSchema = z
  .object({ username: usernameSchema, email: emailSchema.nullable().optional(), active: z.boolean().default(true) })
  .strict();
export type UserCreate = z.infer<typeof userCreateSchema>;
export const userUpdateSchema = z
  .object({ email: emailSchema.nullable().optional(), active: z.boolean().optional() })
  .strict()
  .refine((v) => Object.keys(v).length > 0, 'nothing to change: give email or active');
export type UserUpdate = z.infer<typeof userUpdateSchema>;
export const userSchema = z.object({
  username: z.string(),
  email: z.string().nullable(),
  active: z.boolean(),
  experiments: z.array(z.object({ experiment: z.string(), source: z.enum(['sql', 'oidc']) })),
});
export type User = z.infer<typeof userSchema>;

export const memberAddSchema = z
  .object({
    username: usernameSchema,
    create_user: z.boolean().default(false).describe('create the user when unknown (default: refuse)'),
  })
  .strict();
export type MemberAdd = z.infer<typeof memberAddSchema>;
export const memberSchema = z.object({
  username: z.string(),
  source: z.enum(['sql', 'oidc']).describe("'oidc': synchronized from IdP groups; 'sql': added by an administrator"),
  user_active: z.boolean(),
  added_at: z.string(),
});
export type Member = z.infer<typeof memberSchema>;

export const usageSchema = z.object({
  experiment: z.string(),
  active: z.boolean(),
  kernels: z.number().int().describe('live kernels (starting, running, restarting, dead not yet cleaned up)'),
  cpu_request: z.number(),
  cpu_limit: z.number(),
  memory_request_mib: z.number().int(),
  memory_limit_mib: z.number().int(),
  gpu_limit: z.number().int(),
});
export type Usage = z.infer<typeof usageSchema>;

export const auditQuerySchema = z
  .object({
    actor: z.string().max(300).optional(),
    action: z.string().max(100).optional().describe("exact action, or a prefix ending in '.' (e.g. 'experiments.')"),
    target: z.string().max(600).optional(),
    since: z.iso.datetime({ offset: true, error: 'an ISO 8601 date-time, e.g. 2026-11-23T00:00:00Z' }).optional(),
    before_id: z.coerce.number().int().positive().optional().describe('page: entries older than this id'),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
  })
  .strict();
export type AuditQuery = z.infer<typeof auditQuerySchema>;
export const auditEntrySchema = z.object({
  id: z.number().int(),
  created_at: z.string(),
  actor: z.string(),
  action: z.string().describe("'<table>.<insert|update|delete>' for admin changes, 'kernel.launch' for launches"),
  target: z.string().nullable(),
  details: z.record(z.string(), z.unknown()),
});
export type AuditEntry = z.infer<typeof auditEntrySchema>;

/** Parses `input` or throws an AdminError listing every problem as `field: message`. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const r = schema.safeParse(input);
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message));
  throw new AdminError('invalid', problems.join('; '));
}
