/** OpenAPI paths and schemas of the admin API (`/api/admin`), generated from src/admin's zod schemas. */
import { z } from 'zod';
import {
  auditEntrySchema,
  environmentCreateSchema,
  environmentSchema,
  environmentUpdateSchema,
  experimentCreateSchema,
  experimentSchema,
  experimentUpdateSchema,
  memberAddSchema,
  memberSchema,
  tokenSchema,
  usageSampleSchema,
  usageSchema,
  userCreateSchema,
  userSchema,
  userUpdateSchema,
} from '../../admin';

const json = (schema: z.ZodType, io: 'input' | 'output' = 'output') =>
  z.toJSONSchema(schema, { target: 'openapi-3.0', io, unrepresentable: 'any' });

export function adminSchemas(): Record<string, object> {
  return {
    AdminExperiment: json(experimentSchema),
    AdminExperimentCreate: json(experimentCreateSchema, 'input'),
    AdminExperimentUpdate: json(experimentUpdateSchema, 'input'),
    AdminEnvironment: json(environmentSchema),
    AdminEnvironmentCreate: json(environmentCreateSchema, 'input'),
    AdminEnvironmentUpdate: json(environmentUpdateSchema, 'input'),
    AdminUser: json(userSchema),
    AdminUserCreate: json(userCreateSchema, 'input'),
    AdminUserUpdate: json(userUpdateSchema, 'input'),
    AdminMember: json(memberSchema),
    AdminMemberAdd: json(memberAddSchema, 'input'),
    AdminUsage: json(usageSchema),
    AdminUsageSample: json(usageSampleSchema),
    AdminAuditEntry: json(auditEntrySchema),
    AdminToken: json(tokenSchema),
  };
}

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const body = (name: string) => ({ required: true, content: { 'application/json': { schema: ref(name) } } });
const ok = (description: string, schema: object) => ({ description, content: { 'application/json': { schema } } });
const list = (key: string, item: string) => ({ type: 'object', properties: { [key]: { type: 'array', items: ref(item) } } });
const err = (description: string) => ({ description, content: { 'application/json': { schema: ref('Error') } } });
const errors = {
  '401': err('Missing or invalid token'),
  '403': err('Not an admin (admin token or OIDC admin role needed)'),
  '503': err('Database or identity provider unavailable'),
};
const invalid = { '400': err('Invalid input; the message names each field and what is wrong, or the constraint violated') };
const missing = { '404': err('No such experiment, environment, user, membership or token') };
const conflict = { '409': err('Already exists, or still referenced') };
const p = (name: string, description: string) => ({ name, in: 'path', required: true, schema: { type: 'string' }, description });
const exp = p('name', 'experiment name');
const env = p('name', 'environment name');
const usr = p('username', 'user name');
const tokenId = { name: 'id', in: 'path', required: true, schema: { type: 'integer', minimum: 1 }, description: 'token id (from the listing)' };
const activeOnly = { name: 'active_only', in: 'query', schema: { type: 'boolean' }, description: 'hide inactive entries' };

export function adminPaths(): Record<string, object> {
  return {
    '/api/admin/experiments': {
      get: { tags: ['admin'], summary: 'Experiments with their limits, environments and member count', parameters: [activeOnly], responses: { '200': ok('experiments', list('experiments', 'AdminExperiment')), ...errors } },
      post: { tags: ['admin'], summary: 'Create an experiment', requestBody: body('AdminExperimentCreate'), responses: { '201': ok('created', ref('AdminExperiment')), ...invalid, ...conflict, ...errors } },
    },
    '/api/admin/experiments/{name}': {
      get: { tags: ['admin'], summary: 'One experiment', parameters: [exp], responses: { '200': ok('experiment', ref('AdminExperiment')), ...missing, ...errors } },
      patch: { tags: ['admin'], summary: 'Change limits, name or active; applies to the next launch', parameters: [exp], requestBody: body('AdminExperimentUpdate'), responses: { '200': ok('updated', ref('AdminExperiment')), ...invalid, ...missing, ...conflict, ...errors } },
    },
    '/api/admin/experiments/{name}/deactivate': { post: { tags: ['admin'], summary: 'Deactivate: launches in its environments are refused', parameters: [exp], responses: { '200': ok('deactivated', ref('AdminExperiment')), ...missing, ...errors } } },
    '/api/admin/experiments/{name}/activate': { post: { tags: ['admin'], summary: 'Activate again', parameters: [exp], responses: { '200': ok('activated', ref('AdminExperiment')), ...missing, ...errors } } },
    '/api/admin/experiments/{name}/members': {
      get: { tags: ['admin'], summary: "Members with their source ('sql' or 'oidc')", parameters: [exp], responses: { '200': ok('members', list('members', 'AdminMember')), ...missing, ...errors } },
      post: { tags: ['admin'], summary: 'Add a member (administrator-managed, never removed by the group sync)', parameters: [exp], requestBody: body('AdminMemberAdd'), responses: { '201': ok('added', ref('AdminMember')), ...invalid, ...missing, ...conflict, ...errors } },
    },
    '/api/admin/experiments/{name}/members/{username}': { delete: { tags: ['admin'], summary: 'Remove a member', parameters: [exp, usr], responses: { '204': { description: 'removed' }, ...missing, ...errors } } },
    '/api/admin/experiments/{name}/usage': { get: { tags: ['admin'], summary: "Resources held by the experiment's live kernels", parameters: [exp], responses: { '200': ok('usage', ref('AdminUsage')), ...missing, ...errors } } },
    '/api/admin/usage': { get: { tags: ['admin'], summary: 'Usage of every experiment', responses: { '200': ok('usage', list('usage', 'AdminUsage')), ...errors } } },
    '/api/admin/usage/history': {
      get: {
        tags: ['admin'],
        summary: 'Usage samples over time (usage.sample_interval_seconds apart), oldest first',
        parameters: [
          { name: 'hours', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 2160, default: 24 } },
          { name: 'experiment', in: 'query', schema: { type: 'string' } },
        ],
        responses: { '200': ok('samples', list('samples', 'AdminUsageSample')), ...invalid, ...errors },
      },
    },
    '/api/admin/environments': {
      get: { tags: ['admin'], summary: 'Registered environments', parameters: [{ name: 'experiment', in: 'query', schema: { type: 'string' } }], responses: { '200': ok('environments', list('environments', 'AdminEnvironment')), ...errors } },
      post: { tags: ['admin'], summary: 'Register an environment in an experiment', requestBody: body('AdminEnvironmentCreate'), responses: { '201': ok('registered', ref('AdminEnvironment')), ...invalid, ...missing, ...conflict, ...errors } },
    },
    '/api/admin/environments/{name}': {
      get: { tags: ['admin'], summary: 'One environment', parameters: [env], responses: { '200': ok('environment', ref('AdminEnvironment')), ...missing, ...errors } },
      patch: { tags: ['admin'], summary: 'Move to another experiment', parameters: [env], requestBody: body('AdminEnvironmentUpdate'), responses: { '200': ok('moved', ref('AdminEnvironment')), ...invalid, ...missing, ...errors } },
      delete: { tags: ['admin'], summary: 'Unregister (it then follows kernels.unregistered_environments)', parameters: [env], responses: { '204': { description: 'unregistered' }, ...missing, ...errors } },
    },
    '/api/admin/users': {
      get: { tags: ['admin'], summary: 'Users with their memberships', parameters: [activeOnly], responses: { '200': ok('users', list('users', 'AdminUser')), ...errors } },
      post: { tags: ['admin'], summary: 'Create a user', requestBody: body('AdminUserCreate'), responses: { '201': ok('created', ref('AdminUser')), ...invalid, ...conflict, ...errors } },
    },
    '/api/admin/users/{username}': {
      get: { tags: ['admin'], summary: 'One user', parameters: [usr], responses: { '200': ok('user', ref('AdminUser')), ...missing, ...errors } },
      patch: { tags: ['admin'], summary: 'Change email or active', parameters: [usr], requestBody: body('AdminUserUpdate'), responses: { '200': ok('updated', ref('AdminUser')), ...invalid, ...missing, ...errors } },
    },
    '/api/admin/users/{username}/deactivate': { post: { tags: ['admin'], summary: 'Deactivate: their launches are refused', parameters: [usr], responses: { '200': ok('deactivated', ref('AdminUser')), ...missing, ...errors } } },
    '/api/admin/users/{username}/activate': { post: { tags: ['admin'], summary: 'Activate again', parameters: [usr], responses: { '200': ok('activated', ref('AdminUser')), ...missing, ...errors } } },
    '/api/admin/tokens': {
      get: {
        tags: ['admin'],
        summary: 'API tokens, newest first: metadata only (the secret is never stored, so never shown)',
        parameters: [
          { name: 'user', in: 'query', schema: { type: 'string' } },
          { name: 'kind', in: 'query', schema: { type: 'string', enum: ['gateway', 'cli'] } },
          { name: 'all', in: 'query', schema: { type: 'boolean' }, description: 'also expired and revoked tokens' },
        ],
        responses: { '200': ok('tokens', list('tokens', 'AdminToken')), ...invalid, ...errors },
      },
    },
    '/api/admin/tokens/{id}': {
      get: { tags: ['admin'], summary: 'One token', parameters: [tokenId], responses: { '200': ok('token', ref('AdminToken')), ...invalid, ...missing, ...errors } },
      delete: { tags: ['admin'], summary: 'Revoke (audited; idempotent); the token is refused from the next request on', parameters: [tokenId], responses: { '200': ok('revoked', ref('AdminToken')), ...invalid, ...missing, ...errors } },
    },
    '/api/admin/users/{username}/tokens': {
      delete: { tags: ['admin'], summary: "Revoke every active token of a user (audited)", parameters: [usr], responses: { '200': ok('how many were revoked', { type: 'object', properties: { revoked: { type: 'integer' } } }), ...errors } },
    },
    '/api/admin/audit': {
      get: {
        tags: ['admin'],
        summary: 'Audit log, newest first: admin changes (API, CLI, SQL, group sync), token mint/revoke and kernel launches',
        parameters: [
          { name: 'actor', in: 'query', schema: { type: 'string' } },
          { name: 'action', in: 'query', schema: { type: 'string' }, description: "exact, or a prefix ending in '.'" },
          { name: 'target', in: 'query', schema: { type: 'string' } },
          { name: 'since', in: 'query', schema: { type: 'string', format: 'date-time' } },
          { name: 'before_id', in: 'query', schema: { type: 'integer' } },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } },
        ],
        responses: { '200': ok('entries', list('entries', 'AdminAuditEntry')), ...invalid, ...errors },
      },
    },
  };
}
