/**
 * `spawngate dry-run --user alice [--profile slug] [--kernel name]`: the Pod (and connection Secret)
 * manifests the kubernetes backend would create for that user's server and, optionally, one of their
 * kernels — as YAML, for admins to review. Nothing is created and the Kubernetes API is never contacted;
 * the home tree is read (kernelspecs, the home owner's uid) and, for a kernel, the database is asked for
 * the experiment's quota exactly as a launch would.
 *
 * The workload specs mirror what src/jobs/server-lifecycle.ts and src/kernels/lifecycle/kernel-service.ts
 * hand the backend (same labels, command, env names, ports); values only known at start (tokens, the
 * kernel id and key) are shown as placeholders.
 */
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import {
  buildConnectionSecret,
  buildPod,
  CONNECTION_INFO_ENV,
  kubernetesOptionsFromConfig,
  namespaceFor,
  PermanentBackendError,
  podManifestOptions,
  type PodPlan,
  userLabelValue,
  type WorkloadSpec,
} from '../backends';
import type { Config, Profile } from '../config';
import type { Db } from '../db';
import { CONTAINER_KERNEL_PORTS, createKernelspecCatalog, grantFor, KernelRequestError, limitVariables } from '../kernels';
import { createProfileCatalog, serverWorkloadName, validateUsername } from '../profiles';

export const dryRunArgsSchema = z
  .object({
    user: z.string().min(1),
    profile: z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'a profile slug').optional(),
    kernel: z.string().min(1).optional(),
  })
  .strict();
export type DryRunArgs = z.infer<typeof dryRunArgsSchema>;

const PLACEHOLDER = (what: string) => `<${what}>`;

function serverSpec(config: Config, user: string, profile: Profile): WorkloadSpec {
  const prefix = `/user/${encodeURIComponent(user)}/`;
  const env: Record<string, string> = {
    JUPYTERHUB_USER: user,
    JUPYTERHUB_API_TOKEN: PLACEHOLDER('from the hub at spawn'),
    ...profile.env,
    JUPYTERHUB_SERVICE_URL: `http://0.0.0.0:{port}${prefix}`,
    JUPYTER_GATEWAY_URL: config.publicUrl,
    JUPYTER_GATEWAY_AUTH_TOKEN: PLACEHOLDER('minted at start'),
    KERNEL_USERNAME: user,
  };
  const r = profile.resources;
  return {
    name: serverWorkloadName(user, ''),
    kind: 'server',
    labels: {
      'app.kubernetes.io/name': 'spawngate',
      'app.kubernetes.io/component': 'singleuser-server',
      'spawngate/user': userLabelValue(user),
      'spawngate/server-id': 'dry-run', // the database row's id at start
    },
    command: profile.command ?? config.env.SPAWNGATE_SERVER_COMMAND.split(/\s+/).filter(Boolean),
    env,
    image: profile.image,
    resources: { cpuRequest: r.cpu_request, cpuLimit: r.cpu_limit, memoryRequestMiB: r.memory_request_mib, memoryLimitMiB: r.memory_limit_mib, gpuLimit: r.gpu_limit },
    ports: { default: 8888 },
    overrides: profile.kubernetes,
  };
}

async function kernelSpec(config: Config, db: Db, user: string, kernelName: string): Promise<WorkloadSpec> {
  // Problems with kernelspecs go to stderr: stdout is the YAML.
  const catalog = createKernelspecCatalog(config, { logger: { debug: () => undefined, warn: (message) => process.stderr.write(`warning: ${message}\n`) } });
  const resolved = await catalog.resolve(user, kernelName);
  const grant = await grantFor(db, config, user, resolved.environment, resolved.name);
  const kcfg = config.file.kernels;
  const named = (resolved.spec.metadata.process_proxy as { config?: { image_name?: string } } | undefined)?.config?.image_name;
  if (named !== undefined && !kcfg.allowed_images.includes(named)) {
    throw new KernelRequestError(`kernelspec '${resolved.name}' asks for image '${named}', which is not in kernels.allowed_images`);
  }
  const image = named ?? kcfg.image;
  if (!image) throw new KernelRequestError('no kernel image configured for the kubernetes backend (set kernels.image)');
  const l = grant.limits;
  const id = '00000000-0000-4000-8000-000000000000';
  return {
    name: `sg-krn-${id}`,
    kind: 'kernel',
    labels: {
      app: 'spawngate',
      component: 'kernel',
      kernel_id: id,
      'app.kubernetes.io/name': 'spawngate',
      'app.kubernetes.io/component': 'kernel',
      'spawngate/user': userLabelValue(user),
      ...(grant.experimentName ? { 'spawngate/experiment': grant.experimentName } : {}),
    },
    command: [...kcfg.launcher],
    env: {
      ...resolved.spec.env,
      ...limitVariables(l),
      KERNEL_ID: id,
      KERNEL_USERNAME: user,
      SPAWNGATE_KERNEL_ARGV: JSON.stringify(resolved.spec.argv.map((a) => a.replace('{resource_dir}', resolved.dir))),
      HOME: path.join(config.env.SPAWNGATE_HOME_ROOT, user),
      [CONNECTION_INFO_ENV]: JSON.stringify({ ip: '0.0.0.0', transport: 'tcp', ...CONTAINER_KERNEL_PORTS, key: PLACEHOLDER('generated at launch'), signature_scheme: 'hmac-sha256', kernel_name: resolved.name }),
    },
    image,
    resources: { cpuRequest: l.cpu_request, cpuLimit: l.cpu_limit, memoryRequestMiB: l.memory_request_mib, memoryLimitMiB: l.memory_limit_mib, gpuLimit: l.gpu_limit },
    ports: {
      shell: CONTAINER_KERNEL_PORTS.shell_port,
      iopub: CONTAINER_KERNEL_PORTS.iopub_port,
      stdin: CONTAINER_KERNEL_PORTS.stdin_port,
      control: CONTAINER_KERNEL_PORTS.control_port,
      hb: CONTAINER_KERNEL_PORTS.hb_port,
    },
  };
}

/** The manifests as one multi-document YAML string. `db` is needed only with `kernel`. */
export async function renderDryRun(config: Config, args: DryRunArgs, db?: Db): Promise<string> {
  validateUsername(args.user);
  const profiles = createProfileCatalog(config.file.profiles);
  const { profile } = profiles.resolve(args.user, args.profile === undefined ? {} : { profile: args.profile });
  const settings = kubernetesOptionsFromConfig(config);
  const specs = [serverSpec(config, args.user, profile)];
  if (args.kernel !== undefined) {
    if (!db) throw new Error('a kernel dry run needs the database (the experiment quota)');
    specs.push(await kernelSpec(config, db, args.user, args.kernel));
  }
  const docs: string[] = [];
  for (const spec of specs) {
    const what = spec.kind === 'server' ? `server of '${args.user}' (profile '${profile.slug}')` : `kernel '${args.kernel}' of '${args.user}'`;
    let namespace: string;
    let plan: PodPlan;
    try {
      namespace = namespaceFor(spec, settings);
      plan = buildPod(spec, await podManifestOptions(spec, { ...settings, namespace }));
    } catch (err) {
      // What the backend would refuse (no image, a bad override) is part of the review, not a crash.
      if (!(err instanceof PermanentBackendError)) throw err;
      docs.push(`# ${what}: would be refused: ${err.message}\n`);
      continue;
    }
    docs.push(`# ${what}: Pod in namespace ${namespace}\n${YAML.stringify(plan.pod)}`);
    if (plan.connectionInfo !== undefined) {
      plan.pod.metadata!.uid = PLACEHOLDER('uid of the pod');
      docs.push(`# its connection file: Secret owned by the pod (the key is generated at launch)\n${YAML.stringify(buildConnectionSecret(plan.pod, plan.connectionInfo))}`);
    }
  }
  return docs.join('---\n');
}
