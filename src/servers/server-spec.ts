/**
 * The one place a single-user server's workload spec is made: labels, command, the environment
 * spawngate owns, resources and backend overrides, from the profile and what the hub sent. Pure: the
 * lifecycle passes real values, `spawngate dry-run` passes placeholders, and both get the same spec.
 */
import { WORKLOAD_USER_LABEL, type BackendCapabilities, type WorkloadSpec } from '../backends';
import type { Config, Profile } from '../config';

/** Variables spawngate owns; a hub-provided value for them is replaced. */
const OWNED_ENV = ['JUPYTER_GATEWAY_URL', 'JUPYTER_GATEWAY_AUTH_TOKEN', 'KERNEL_USERNAME', 'JUPYTERHUB_SERVICE_URL'];
/** Port a server listens on inside its own container or pod. */
export const CONTAINER_SERVER_PORT = 8888;

export interface ServerSpecInput {
  username: string;
  /** The database row's id (a label); dry-run passes a placeholder. */
  serverId: string;
  workloadName: string;
  profile: Profile;
  /** What the hub sent: its `JUPYTERHUB_*` environment and extra arguments. */
  hubEnv: Record<string, string>;
  args: readonly string[];
  gatewayToken: string;
  capabilities: BackendCapabilities;
  /** Environment inherited from this service by host processes (PATH, LANG, HOME); unused otherwise. */
  hostEnv: Record<string, string>;
}

export function buildServerSpec(config: Pick<Config, 'env' | 'publicUrl'>, input: ServerSpecInput): WorkloadSpec {
  const { profile, capabilities } = input;
  const local = capabilities.hostProcesses;
  const prefix = input.hubEnv.JUPYTERHUB_SERVICE_PREFIX ?? `/user/${encodeURIComponent(input.username)}/`;
  const baseCommand = profile.command ?? config.env.SPAWNGATE_SERVER_COMMAND.split(/\s+/).filter(Boolean);
  const command = [...baseCommand, ...input.args];
  if (local && config.env.SPAWNGATE_ALLOW_ROOT && !command.includes('--allow-root')) command.push('--allow-root');
  // A local server runs with this service's PATH so `jupyterhub-singleuser` resolves; the hub's own
  // PATH/PYTHONPATH/CONDA_* are never forwarded (they describe the hub's machine, not this one).
  const env: Record<string, string> = local ? { ...input.hostEnv } : {};
  for (const [k, v] of Object.entries(input.hubEnv)) if (!OWNED_ENV.includes(k)) env[k] = v;
  Object.assign(env, profile.env);
  const bindHost = local ? '127.0.0.1' : '0.0.0.0';
  env.JUPYTERHUB_SERVICE_URL = `http://${bindHost}:{port}${prefix}`;
  env.JUPYTER_GATEWAY_URL = config.publicUrl;
  env.JUPYTER_GATEWAY_AUTH_TOKEN = input.gatewayToken;
  env.KERNEL_USERNAME = input.username;
  const r = profile.resources;
  return {
    name: input.workloadName,
    kind: 'server',
    labels: {
      'app.kubernetes.io/name': 'spawngate',
      'app.kubernetes.io/component': 'singleuser-server',
      [WORKLOAD_USER_LABEL]: input.username,
      'spawngate/server-id': input.serverId,
    },
    command,
    env,
    image: profile.image,
    resources: {
      cpuRequest: r.cpu_request,
      cpuLimit: r.cpu_limit,
      memoryRequestMiB: r.memory_request_mib,
      memoryLimitMiB: r.memory_limit_mib,
      gpuLimit: r.gpu_limit,
    },
    ports: { default: local ? 0 : CONTAINER_SERVER_PORT },
    overrides: capabilities.overridesKey ? profile[capabilities.overridesKey] : undefined,
  };
}
