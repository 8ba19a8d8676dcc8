/** The chart's render scenarios (values combinations) shared by chart.test.ts and renderers.test.ts. */
import path from 'node:path';
import { CHART, RenderOptions } from './chart-render';

export const EKS = path.join(CHART, 'examples/eks-values.yaml');
export const SECRET_ENV = ['SPAWNGATE_HUB_TOKEN', 'SPAWNGATE_ADMIN_TOKEN', 'SPAWNGATE_SECRET_KEY', 'SPAWNGATE_DATABASE_URL', 'SPAWNGATE_REDIS_URL'];
export const HUB_TOKEN = 'hub-token-0123456789-abcdef';
export const ADMIN_TOKEN = 'admin-token-0123456789-abcdef';
export const SECRET_KEY = 'c2VjcmV0LWtleS1zZWNyZXQta2V5LXNlY3JldC1rZXkxMjM=';
export const DB_URL = 'postgres://spawngate:db-password-xyz@db.example:5432/spawngate';
export const REDIS_URL = 'rediss://:redis-password-xyz@cache.example:6379';
export const external = {
  postgresql: { enabled: false },
  redis: { enabled: false },
  secrets: { hubToken: HUB_TOKEN, adminToken: ADMIN_TOKEN, secretKey: SECRET_KEY, databaseUrl: DB_URL, redisUrl: REDIS_URL },
};

/** Scenarios: name → render options. */
export const scenarios: Record<string, RenderOptions> = {
  defaults: {},
  eks: { files: [EKS], name: 'spawngate', namespace: 'spawngate' },
  external: { values: [external] },
  'existing secret, no trial': { values: [{ postgresql: { enabled: false }, redis: { enabled: false }, secrets: { existingSecret: 'mine' } }] },
  'hpa + homes + several namespaces': {
    values: [
      external,
      {
        api: { autoscaling: { enabled: true } },
        homes: { enabled: true, existingClaim: 'homes' },
        workloads: { namespaces: ['exp-a', 'exp-b'] },
        networkPolicy: { hub: { namespace: 'jhub' } },
      },
    ],
  },
  'oidc with introspection': {
    values: [
      external,
      {
        secrets: { oidcClientSecret: 'oidc-client-secret-value' },
        config: {
          oidc: {
            issuer: 'https://idp.example.org/realms/research',
            audience: 'spawngate',
            admin_values: ['spawngate-admins'],
            group_experiments: { 'lab-genomics': 'genomics' },
            introspection: true,
            client_id: 'spawngate',
          },
        },
      },
    ],
  },
  'everything optional off': {
    values: [
      external,
      {
        networkPolicy: { enabled: false },
        rbac: { create: false },
        serviceAccount: { create: false, name: 'preexisting' },
        migrations: { enabled: false },
        api: { podDisruptionBudget: { enabled: false } },
        worker: { podDisruptionBudget: { enabled: false }, metricsPort: null },
      },
    ],
  },
};
