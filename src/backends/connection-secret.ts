/**
 * How a kernel's connection info (its ports and HMAC key) reaches a container. The kernels module puts
 * the JSON in `spec.env[CONNECTION_INFO_ENV]`; a container backend must lift it out of the environment
 * (a container's or pod's env is readable by anyone who may inspect it) and deliver it as a file at
 * `CONNECTION_FILE` — a Secret volume on Kubernetes, a file copied in before start on Docker — then set
 * `CONNECTION_SOURCE_ENV` so `spawngate.launcher` reads it from there.
 */
export const CONNECTION_INFO_ENV = 'SPAWNGATE_CONNECTION_INFO';
export const CONNECTION_SOURCE_ENV = 'SPAWNGATE_CONNECTION_SOURCE';
export const CONNECTION_DIR = '/var/run/spawngate';
export const CONNECTION_FILE = `${CONNECTION_DIR}/connection.json`;

/** Splits the secret out of a spec's environment: what may be shown, and the connection JSON if any. */
export function splitConnectionSecret(env: Record<string, string>): { env: Record<string, string>; connectionInfo?: string } {
  const { [CONNECTION_INFO_ENV]: connectionInfo, ...rest } = env;
  return connectionInfo === undefined ? { env: rest } : { env: { ...rest, [CONNECTION_SOURCE_ENV]: CONNECTION_FILE }, connectionInfo };
}

/**
 * Variables whose values are credentials (the hub's API token, under its current and its legacy name,
 * and the gateway token a server presents to spawngate). A pod's env is readable by anyone who may
 * `get pods`, so the kubernetes backend moves them into the pod's Secret and references them there.
 */
export const SECRET_ENV_NAMES: readonly string[] = ['JUPYTERHUB_API_TOKEN', 'JPY_API_TOKEN', 'JUPYTER_GATEWAY_AUTH_TOKEN'];
