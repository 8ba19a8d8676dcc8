/**
 * The one place a kernel's workload spec is made: name, labels, command (the kernelspec argv on host
 * backends, the launcher in containers), environment (EG's resource variables), resources, ports, and
 * which image a container kernel may run. Pure: the launch job passes the recorded kernel, `spawngate
 * dry-run` passes placeholders, and both get the same spec.
 */
import path from 'node:path';
import { CONNECTION_INFO_ENV, WORKLOAD_USER_LABEL, type BackendCapabilities, type WorkloadSpec } from '../../backends';
import type { Config } from '../../config';
import type { KernelLimits, KernelPorts } from '../../db';
import type { KernelConnectionInfo } from '../channels';
import { processProxyOf } from '../kernelspec-process-proxy';
import { substituteArgv } from './argv-placeholders';
import { KernelRequestError } from './errors';
import { limitVariables } from './quota-check';

/** Every kernel workload's name starts so. */
export const KERNEL_WORKLOAD_PREFIX = 'sg-krn-';

export function kernelWorkloadName(kernelId: string): string {
  return `${KERNEL_WORKLOAD_PREFIX}${kernelId}`;
}

/** The kernel id a kernel workload name carries, or undefined for other workloads. */
export function kernelIdOf(workloadName: string): string | undefined {
  return workloadName.startsWith(KERNEL_WORKLOAD_PREFIX) ? workloadName.slice(KERNEL_WORKLOAD_PREFIX.length) : undefined;
}

export interface KernelSpecInput {
  kernelId: string;
  username: string;
  experimentName: string | null;
  limits: KernelLimits;
  /** The kernelspec argv, every placeholder but `{connection_file}` already resolved. */
  argv: readonly string[];
  /** The kernelspec's env plus the client's filtered `KERNEL_*` variables. */
  env: Record<string, string>;
  workingDir?: string;
  image?: string;
  /** Ports the kernel listens on (ipc kernels: the endpoint suffixes). */
  ports: KernelPorts;
  /** Which block of `kernels:` holds this backend's pod placement (the backend's capability). */
  overridesKey?: BackendCapabilities['overridesKey'];
  placement:
    | {
        /** Host processes read the connection file spawngate wrote (`{connection_file}` in argv). */
        hostProcesses: true;
        connectionFile: string;
        /** Environment inherited from this service (PATH, LANG). */
        hostEnv: Record<string, string>;
        /**
         * The kernel's private runtime directory, as its TMPDIR (EG launchers only, see
         * `privateTempEnv`): where their temporary connection file must land to be believed.
         */
        tmpDir?: string;
      }
    | {
        /** In a container the launcher writes the connection file and execs the kernelspec argv. */
        hostProcesses: false;
        launcher: readonly string[];
        /** What the launcher writes; backends lift it out of the env into a Secret or a copied file. */
        connectionInfo: KernelConnectionInfo;
      }
    | {
        /**
         * An Enterprise Gateway launcher in a container: the argv (placeholders resolved) is the
         * container's command; it picks its own ports and key and reports them to the response address.
         */
        hostProcesses: false;
        responseAddress: string;
        publicKey: string;
      };
}

/**
 * Kernel pods' placement: `kernels.kubernetes`, with the keys of `kernels.experiment_kubernetes.<experiment>`
 * replacing its own. Only the kubernetes backend takes such a block; others get none.
 */
export function kernelOverrides(
  kernels: Pick<Config['file']['kernels'], 'kubernetes' | 'experiment_kubernetes'>,
  overridesKey: BackendCapabilities['overridesKey'],
  experimentName: string | null,
): Record<string, unknown> | undefined {
  if (overridesKey !== 'kubernetes') return undefined;
  const merged = { ...(kernels.kubernetes ?? {}), ...(experimentName ? kernels.experiment_kubernetes[experimentName] : {}) };
  return Object.keys(merged).length ? merged : undefined;
}

/** What Python's `tempfile` (TMPDIR, TEMP, TMP) and R's `tempdir()` (TMPDIR, TMP, TEMP) consult, first set wins. */
export const TEMP_DIR_VARIABLES = ['TMPDIR', 'TMP', 'TEMP'] as const;

/**
 * `{ TMPDIR: dir }` for a host kernel whose launcher makes its own temporary connection file, so it
 * lands in the kernel's private directory (launcher-file-proof.ts), unless the kernel's env (its
 * kernelspec, or an allow-listed client variable) names a temp directory of its own: that choice is
 * kept, and such a launcher is then believed only by its uid.
 */
export function privateTempEnv(env: Record<string, string>, dir: string | undefined): Record<string, string> {
  if (dir === undefined || TEMP_DIR_VARIABLES.some((v) => env[v] !== undefined)) return {};
  return { TMPDIR: dir };
}

export function buildKernelSpec(config: Pick<Config, 'env' | 'file'>, input: KernelSpecInput): WorkloadSpec {
  const home = path.join(config.env.SPAWNGATE_HOME_ROOT, input.username);
  const env: Record<string, string> = { ...input.env, ...limitVariables(input.limits), KERNEL_ID: input.kernelId, KERNEL_USERNAME: input.username };
  let command: string[];
  const p = input.placement;
  if (p.hostProcesses) {
    for (const [k, v] of Object.entries(p.hostEnv)) if (env[k] === undefined) env[k] = v;
    env.HOME = home;
    Object.assign(env, privateTempEnv(env, p.tmpDir));
    command = substituteArgv(input.argv, { connection_file: p.connectionFile });
  } else if ('launcher' in p) {
    command = [...p.launcher];
    env.SPAWNGATE_KERNEL_ARGV = JSON.stringify(input.argv);
    env[CONNECTION_INFO_ENV] = JSON.stringify(p.connectionInfo);
    env.HOME = home;
  } else {
    command = [...input.argv];
    // What EG's kernel pods get, so an image's own entrypoint (EG's bootstrap-kernel.sh) finds it too.
    Object.assign(env, { RESPONSE_ADDRESS: p.responseAddress, PUBLIC_KEY: p.publicKey, HOME: home });
  }
  const selfReporting = !p.hostProcesses && !('launcher' in p);
  const l = input.limits;
  const ports = input.ports;
  return {
    name: kernelWorkloadName(input.kernelId),
    kind: 'kernel',
    labels: {
      app: 'spawngate',
      component: 'kernel',
      kernel_id: input.kernelId,
      'app.kubernetes.io/name': 'spawngate',
      'app.kubernetes.io/component': 'kernel',
      [WORKLOAD_USER_LABEL]: input.username,
      // The kubernetes backend places an experiment's kernels in that experiment's namespace (if configured).
      ...(input.experimentName ? { 'spawngate/experiment': input.experimentName } : {}),
    },
    command,
    env,
    image: input.image,
    workingDir: input.workingDir,
    resources: {
      cpuRequest: l.cpu_request,
      cpuLimit: l.cpu_limit,
      memoryRequestMiB: l.memory_request_mib,
      memoryLimitMiB: l.memory_limit_mib,
      gpuLimit: l.gpu_limit,
    },
    // A self-reporting launcher chooses its ports inside its port range: there is nothing to publish.
    ...(selfReporting ? {} : { ports: { shell: ports.shell_port, iopub: ports.iopub_port, stdin: ports.stdin_port, control: ports.control_port, hb: ports.hb_port } }),
    overrides: kernelOverrides(config.file.kernels, input.overridesKey, input.experimentName),
  };
}

/**
 * The image a container kernel runs: the kernelspec's Enterprise Gateway `image_name` when the admin
 * allowed it (a user's own kernel.json must not pick arbitrary images), else `kernels.image`.
 */
export function kernelImage(kernels: Pick<Config['file']['kernels'], 'allowed_images' | 'image'>, metadata: Record<string, unknown>, kernelName: string, backendName: string): string {
  const named = processProxyOf(metadata, kernelName).imageName;
  if (named !== undefined) {
    if (!kernels.allowed_images.includes(named)) {
      throw new KernelRequestError(`kernelspec '${kernelName}' asks for image '${named}', which is not in kernels.allowed_images`);
    }
    return named;
  }
  if (!kernels.image) throw new KernelRequestError(`no kernel image configured for the ${backendName} backend (set kernels.image)`);
  return kernels.image;
}
