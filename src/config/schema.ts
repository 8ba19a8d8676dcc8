/**
 * The configuration contract: environment variables (DESIGN §5) and the optional YAML file.
 * Every field carries `.describe()` help with its unit and default; the README's configuration
 * table is rendered from these descriptions (`spawngate config-doc`).
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { dockerConfigSchema } from './docker-schema';
import { kernelPodSchema, kubernetesConfigSchema, kubernetesOverridesSchema } from './kubernetes-schema';
import { oidcConfigSchema } from './oidc-schema';
import { envProblems } from './k8s-validation';

/** The smallest CPU amount Kubernetes can express (1m); less would render as `0m`, which means no limit. */
export const MIN_CPU_CORES = 0.001;
const MIN_CPU_MESSAGE = 'at least 0.001 cores (1m): less renders as 0m, which Kubernetes treats as no limit';

const boolFromEnv = z
  .enum(['1', '0', 'true', 'false', 'yes', 'no'])
  .transform((v) => v === '1' || v === 'true' || v === 'yes');

export const resourcesSchema = z
  .object({
    cpu_request: z.number().min(MIN_CPU_CORES, MIN_CPU_MESSAGE).optional().describe('CPU cores requested (at least 0.001)'),
    cpu_limit: z.number().min(MIN_CPU_CORES, MIN_CPU_MESSAGE).optional().describe('CPU cores limit (at least 0.001)'),
    memory_request_mib: z.number().int().positive().optional().describe('memory requested, MiB'),
    memory_limit_mib: z.number().int().positive().optional().describe('memory limit, MiB'),
    gpu_limit: z.number().int().min(0).optional().describe('GPUs (nvidia.com/gpu)'),
  })
  .strict()
  .refine((r) => r.cpu_request === undefined || r.cpu_limit === undefined || r.cpu_request <= r.cpu_limit, {
    message: 'cpu_request must not exceed cpu_limit',
  })
  .refine(
    (r) =>
      r.memory_request_mib === undefined ||
      r.memory_limit_mib === undefined ||
      r.memory_request_mib <= r.memory_limit_mib,
    { message: 'memory_request_mib must not exceed memory_limit_mib' },
  );
export type Resources = z.infer<typeof resourcesSchema>;

const userListSchema = z.array(z.string().min(1)).optional();

export const profileSchema = z
  .object({
    slug: z
      .string()
      .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'slug must be a DNS label (a-z, 0-9, -)')
      .describe('stable identifier sent by the hub as user_options.profile'),
    display_name: z.string().min(1).max(200).describe('name shown in the spawn form'),
    description: z.string().max(2000).default('').describe('text shown under the name'),
    default: z.boolean().default(false).describe('preselected in the form; the first profile otherwise'),
    command: z
      .array(z.string())
      .min(1)
      .optional()
      .describe('single-user command for the local backend (default: jupyterhub-singleuser)'),
    image: z.string().optional().describe('container image for docker/kubernetes backends'),
    resources: resourcesSchema.default({}).describe('requests and limits for the single-user server'),
    env: z.record(z.string(), z.string()).default({}).describe('extra environment for the server'),
    allowed_users: userListSchema.describe('only these users see the profile (default: everyone)'),
    kubernetes: kubernetesOverridesSchema.optional().describe('kubernetes pod overrides (see docs/kubernetes.md)'),
    docker: z.record(z.string(), z.unknown()).optional().describe('docker container overrides (see docs)'),
  })
  .strict()
  .superRefine((p, ctx) => {
    // Names no Kubernetes version accepts; the stricter rule of clusters before 1.32 is applied at launch.
    for (const message of envProblems('env', p.env, 'relaxed')) ctx.addIssue({ code: 'custom', message });
  });
export type Profile = z.infer<typeof profileSchema>;

export const fileConfigSchema = z
  .object({
    profiles: z.array(profileSchema).default([]).describe('server profiles offered to users'),
    kernels: z
      .object({
        default_kernel: z.string().optional().describe('kernelspec name reported as default'),
        allowed_kernels: z.array(z.string()).optional().describe('only these kernelspec names are offered'),
        denied_kernels: z.array(z.string()).default([]).describe('these kernelspec names are never offered'),
        allowed_users: userListSchema.describe('only these users may use the gateway'),
        denied_users: z.array(z.string()).default([]).describe('these users may not use the gateway'),
        unregistered_environments: z
          .union([z.literal('deny'), z.object({ profile: z.string() })])
          .default('deny')
          .describe("what to do with environments not in the database: 'deny' or {profile: <slug>}"),
        env_allowlist: z
          .array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/))
          .default([])
          .describe('non-KERNEL_ variables the client may pass to kernels'),
        launch_timeout_seconds: z
          .number()
          .positive()
          .max(3600)
          .default(60)
          .describe('seconds a kernel may take to answer kernel_info (KERNEL_LAUNCH_TIMEOUT may ask for less, or more up to max_launch_timeout_seconds)'),
        max_launch_timeout_seconds: z
          .number()
          .positive()
          .max(3600)
          .default(300)
          .describe("longest launch a client's KERNEL_LAUNCH_TIMEOUT may ask for, seconds (default 300: a slow image pull, yet a stuck launch holds a worker slot at most 5 minutes)"),
        max_kernels_per_user: z
          .number()
          .int()
          .positive()
          .default(20)
          .describe('running + starting kernels one user may have (default 20: a user with many notebooks open uses a handful; 20 stops a runaway loop long before it exhausts the machine)'),
        max_launches_in_flight_per_user: z
          .number()
          .int()
          .positive()
          .default(5)
          .describe('kernel launches of one user that may be starting at once (default 5): each holds a worker slot until the kernel answers, so one user never holds more than 5 while everyone else waits'),
        host_transport: z
          .enum(['ipc', 'tcp'])
          .default('ipc')
          .describe("transport of kernels on host-process backends (local): 'ipc' (sockets in a per-kernel directory only the kernel's user can enter, under SPAWNGATE_RUNTIME_DIR) or 'tcp' (127.0.0.1 ports any local process can connect to)"),
        max_frame_bytes: z
          .number()
          .int()
          .positive()
          .default(10 * 1024 * 1024)
          .describe("largest websocket message a client may send on a kernel's channels, bytes (default 10 MiB, as Jupyter Server's websocket_max_message_size); larger ones close the socket with 1009"),
        channel_buffer_bytes: z
          .number()
          .int()
          .positive()
          .default(32 * 1024 * 1024)
          .describe("byte budget of a kernel's bridge in each direction (default 32 MiB). Towards the kernel: client messages held while the kernel does not read; beyond it the bridge stops reading its websockets until half has drained. Towards clients: messages one websocket has not read yet; beyond it the kernel is not read until that websocket has read down to half, and one of several websockets still over it after slow_client_grace_seconds is closed (1008)"),
        slow_client_grace_seconds: z
          .number()
          .positive()
          .max(300)
          .default(10)
          .describe("seconds one of several websockets of a kernel may hold more than channel_buffer_bytes of unread messages (its kernel paused meanwhile) before it is closed with 1008 and the others receive again (default 10: a reading client lagging through a burst catches up well within it)"),
        max_kernels_per_experiment: z
          .number()
          .int()
          .positive()
          .optional()
          .describe('running + starting kernels one experiment may have (default: no limit)'),
        port_range: z
          .tuple([z.number().int().min(1024).max(65535), z.number().int().min(1024).max(65535)])
          .refine(([lo, hi]) => hi - lo >= 100, { message: 'the range needs at least 100 ports' })
          .default([20000, 32767])
          .describe('ports local kernels may listen on, [low, high]; keep it outside the ephemeral range'),
        image: z
          .string()
          .min(1)
          .optional()
          .describe('container image of kernels on docker/kubernetes (needs python3 with spawngate.launcher; the environment\'s Python comes from the mounted home)'),
        allowed_images: z
          .array(z.string().min(1))
          .default([])
          .describe("images a kernel.json may name in metadata.process_proxy.config.image_name (Enterprise Gateway's convention); others are refused"),
        response_address: z
          .string()
          .max(253)
          .refine((v) => isIP(v) !== 0 || /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(v), {
            message: 'a host name or IP address, without a port',
          })
          .optional()
          .describe("host (IP or DNS name, no port) that Enterprise Gateway launchers in containers send their kernel's connection info to; spawngate listens on an ephemeral port there for each launch. Default: on docker the gateway of the user's network (or spawngate's own container there, with docker.attach_containers); on kubernetes this host's first non-loopback IPv4 (the worker pod's IP). Local kernels always use 127.0.0.1"),
        launcher: z
          .array(z.string().min(1))
          .min(1)
          .default(['python3', '-m', 'spawngate.launcher'])
          .describe('command that starts a container kernel: it reads the connection file and execs the kernelspec argv'),
        kubernetes: kernelPodSchema.optional().describe('kernel pods\' placement on the kubernetes backend: nodeSelector, tolerations, imagePullSecrets, … (see docs/kubernetes.md)'),
        experiment_kubernetes: z
          .record(z.string(), kernelPodSchema)
          .default({})
          .describe('per experiment (by name): kernel pod placement whose keys replace those of kernels.kubernetes, e.g. {genomics: {nodeSelector: {pool: gpu}}}'),
        shutdown_grace_seconds: z.number().min(0).max(300).default(5).describe('seconds between shutdown_request and kill'),
        cull_idle_timeout: z.number().min(0).default(0).describe('seconds of inactivity before a kernel is culled; 0 disables culling'),
        cull_interval: z.number().positive().default(300).describe('seconds between culling passes'),
        cull_connected: z.boolean().default(false).describe('also cull idle kernels that have websocket connections'),
        cull_busy: z.boolean().default(false).describe('also cull kernels that are busy'),
      })
      .strict()
      .prefault({}),
    servers: z
      .object({
        max_servers_per_user: z
          .number()
          .int()
          .positive()
          .default(10)
          .describe('servers (default and named) one user may have pending, running or stopping (default 10)'),
        max_spawns_in_flight_per_user: z
          .number()
          .int()
          .positive()
          .default(3)
          .describe('server starts of one user that may be pending at once (default 3): each holds a worker slot until the server answers'),
      })
      .strict()
      .prefault({})
      .describe('single-user server limits'),
    metrics: z
      .object({
        per_user: z
          .boolean()
          .default(false)
          .describe('also export per-user usage series (spawngate_user_*): one series per user with live kernels or servers, times 2 for CPU and memory bounds; leave off where users number in the thousands (default false; see docs/metrics.md)'),
      })
      .strict()
      .prefault({})
      .describe('Prometheus metrics at /metrics'),
    usage: z
      .object({
        sample_interval_seconds: z
          .number()
          .int()
          .min(10)
          .max(3600)
          .default(300)
          .describe('seconds between usage samples kept for the admin page (default 300: 288 rows per experiment and day)'),
        retention_days: z.number().int().min(1).max(3650).default(30).describe('days usage samples are kept (default 30)'),
      })
      .strict()
      .prefault({})
      .describe('usage history shown on the admin page (/admin/)'),
    docker: dockerConfigSchema.prefault({}).describe('docker backend settings'),
    kubernetes: kubernetesConfigSchema.prefault({}).describe('kubernetes backend settings'),
    oidc: oidcConfigSchema.prefault({}).describe('OpenID Connect bearer tokens and group → experiment mapping'),
  })
  .strict();
export type FileConfig = z.infer<typeof fileConfigSchema>;

export const envSchema = z.object({
  SPAWNGATE_PORT: z.coerce.number().int().min(0).max(65535).default(8090).describe('HTTP port of the API (JupyterHub takes 8000, 8001 and 8081)'),
  SPAWNGATE_BIND: z.string().default('127.0.0.1').describe('address the API listens on'),
  SPAWNGATE_PUBLIC_URL: z
    .url()
    .optional()
    .describe('URL single-user servers use to reach the gateway (default http://<bind>:<port>)'),
  SPAWNGATE_DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
    .optional()
    .describe('Postgres URL; unset: the embedded Postgres in SPAWNGATE_DATA_DIR'),
  SPAWNGATE_DATA_DIR: z
    .string()
    .default('.spawngate')
    .describe('directory for the embedded database, server logs and connection files'),
  SPAWNGATE_REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must be a redis:// URL')
    .optional()
    .describe('Redis URL for BullMQ; unset: in-process job runner'),
  SPAWNGATE_QUEUE_PREFIX: z.string().default('spawngate').describe('BullMQ key prefix'),
  SPAWNGATE_BACKEND: z.enum(['local', 'docker', 'kubernetes']).default('local').describe('where workloads run'),
  SPAWNGATE_KUBERNETES_NAMESPACE: z
    .string()
    .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be a DNS label')
    .optional()
    .describe('namespace of the kubernetes backend\'s pods when the YAML kubernetes.namespace is unset'),
  SPAWNGATE_HUB_TOKEN: z.string().min(16, 'must be at least 16 characters').optional().describe('token JupyterHub presents'),
  SPAWNGATE_ADMIN_TOKEN: z
    .string()
    .min(16, 'must be at least 16 characters')
    .optional()
    .describe('service/admin token that may act for any user'),
  SPAWNGATE_HOME_ROOT: z.string().default('/home').describe('root of users\' homes (NFS/EFS)'),
  SPAWNGATE_SHARED_KERNELS: z.string().default('').describe('colon-separated admin kernelspec directories'),
  SPAWNGATE_CONFIG: z.string().optional().describe('path of the optional YAML configuration file'),
  SPAWNGATE_LOG_LEVEL: z.enum(['error', 'warn', 'info', 'debug']).default('info').describe('log level'),
  SPAWNGATE_RUNTIME_DIR: z
    .string()
    .min(1)
    .optional()
    .describe("directory of local kernels' ipc sockets and connection files, one 0700 subdirectory per kernel owned by its user (default <SPAWNGATE_DATA_DIR>.run; keep it short: socket paths are limited to 107 bytes)"),
  SPAWNGATE_START_TIMEOUT: z.coerce.number().positive().default(120).describe('seconds a server may take to answer HTTP'),
  SPAWNGATE_SERVER_COMMAND: z
    .string()
    .default('jupyterhub-singleuser')
    .describe('default single-user command for the local backend (space-separated)'),
  SPAWNGATE_ALLOW_ROOT: boolFromEnv.default(false).describe('pass --allow-root to local single-user servers (default 0)'),
  SPAWNGATE_LOCAL_SHARED_IDENTITY: boolFromEnv
    .default(false)
    .describe("local backend: run every user's workloads as spawngate's own user, for a single-user or demo machine only (default 0: each runs as the owner of its user's home)"),
  SPAWNGATE_LOCAL_TCP_KERNELS_OPEN_TO_ALL_USERS: boolFromEnv
    .default(false)
    .describe("local backend with users under their own identities: launch kernels that listen on TCP ports (Enterprise Gateway launchers, kernels.host_transport 'tcp') although every local user can connect to those ports, read the kernel's output on iopub and flood its sockets; only the kernel's HMAC key keeps them from running code (default 0: such launches are refused with 403)"),
  SPAWNGATE_LOCAL_ALLOW_ROOT: boolFromEnv
    .default(false)
    .describe('local backend: accept root-owned homes, whose workloads then run as root (default 0: refused)'),
  SPAWNGATE_LOCAL_NICE: z.coerce
    .number()
    .int()
    .min(0)
    .max(19)
    .default(10)
    .describe('nice increment of local workloads over spawngate: under CPU contention a burst of starting servers cannot starve spawngate and the hub (0-19, default 10; set on the session autogroup of the workload too, without which autogroup scheduling in Linux ignores it; it changes nothing on an idle machine)'),
  SPAWNGATE_SECRET_KEY: z
    .string()
    .regex(/^[A-Za-z0-9+/=_-]{43,}$/, 'must be 32 random bytes, base64 (openssl rand -base64 32)')
    .optional()
    .describe('key encrypting kernel connection keys at rest; unset: generated in the data directory (required with several replicas)'),
  SPAWNGATE_JOB_LOCK_SECONDS: z.coerce
    .number()
    .min(1)
    .max(600)
    .default(30)
    .describe('seconds before a job of a worker that died is retried by another (BullMQ lock)'),
  SPAWNGATE_WORKER_CONCURRENCY: z.coerce.number().int().positive().default(50).describe('jobs a worker runs at once'),
  SPAWNGATE_WORKER_METRICS_PORT: z.coerce
    .number()
    .int()
    .min(1)
    .max(65535)
    .optional()
    .describe('`spawngate worker` only: port (on SPAWNGATE_BIND) serving /healthz, /readyz and /metrics for that worker; unset: no HTTP'),
  SPAWNGATE_OIDC_ISSUER: z.url().optional().describe('OpenID Provider issuer URL (overrides oidc.issuer); unset with no oidc.issuer: OIDC is off'),
  SPAWNGATE_OIDC_AUDIENCE: z.string().min(1).optional().describe("accepted 'aud' of access tokens, comma-separated (overrides oidc.audience)"),
  SPAWNGATE_OIDC_CLIENT_SECRET: z.string().min(1).optional().describe('client secret for token introspection (oidc.introspection)'),
});
export type EnvConfig = z.infer<typeof envSchema>;
