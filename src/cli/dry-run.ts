/**
 * `spawngate dry-run --user alice [--profile slug] [--kernel name]`: the Pod (and connection Secret)
 * manifests the kubernetes backend would create for that user's server and, optionally, one of their
 * kernels — as YAML, for admins to review. Nothing is created and the Kubernetes API is never contacted;
 * the home tree is read (kernelspecs, the home owner's uid) and, for a kernel, the database is asked for
 * the experiment's quota exactly as a launch would.
 *
 * The workload specs come from the same builders the lifecycles use (`buildServerSpec`,
 * `buildKernelSpec`), with the kubernetes backend's capabilities; values only known at start (tokens,
 * the kernel id and key) are shown as placeholders.
 */
import YAML from 'yaml';
import { z } from 'zod';
import {
  buildPodSecret,
  buildPod,
  KUBERNETES_CAPABILITIES,
  kubernetesOptionsFromConfig,
  namespaceFor,
  PermanentBackendError,
  podManifestOptions,
  type PodPlan,
  type WorkloadSpec,
} from '../backends';
import type { Config, Profile } from '../config';
import type { Db } from '../db';
import { buildKernelSpec, connectionInfo, CONTAINER_KERNEL_PORTS, createKernelspecCatalog, grantFor, kernelImage, usesResponseAddress } from '../kernels';
import { createProfileCatalog, serverWorkloadName, validateUsername } from '../profiles';
import { buildServerSpec } from '../servers';

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
  return buildServerSpec(config, {
    username: user,
    serverId: 'dry-run', // the database row's id at start
    workloadName: serverWorkloadName(user, ''),
    profile,
    hubEnv: { JUPYTERHUB_USER: user, JUPYTERHUB_API_TOKEN: PLACEHOLDER('from the hub at spawn') },
    args: [],
    gatewayToken: PLACEHOLDER('minted at start'),
    capabilities: KUBERNETES_CAPABILITIES,
    hostEnv: {},
  });
}

async function kernelSpec(config: Config, db: Db, user: string, kernelName: string): Promise<WorkloadSpec> {
  // Problems with kernelspecs go to stderr: stdout is the YAML.
  const catalog = createKernelspecCatalog(config, { logger: { debug: () => undefined, warn: (message) => process.stderr.write(`warning: ${message}\n`) } });
  const resolved = await catalog.resolve(user, kernelName);
  const grant = await grantFor(db, config, user, resolved.environment, resolved.name);
  const image = kernelImage(config.file.kernels, resolved.spec.metadata, resolved.name, 'kubernetes');
  return buildKernelSpec(config, {
    kernelId: '00000000-0000-4000-8000-000000000000',
    username: user,
    experimentName: grant.experimentName,
    limits: grant.limits,
    argv: resolved.spec.argv.map((a) => a.replace('{resource_dir}', resolved.dir)),
    env: resolved.spec.env,
    image,
    ports: CONTAINER_KERNEL_PORTS,
    overridesKey: 'kubernetes',
    // An EG launcher is the pod's own command and reports its connection info itself.
    placement: usesResponseAddress(resolved.spec.argv)
      ? { hostProcesses: false, responseAddress: PLACEHOLDER('response address, opened at launch'), publicKey: PLACEHOLDER("the service's public key") }
      : {
          hostProcesses: false,
          launcher: config.file.kernels.launcher,
          connectionInfo: connectionInfo('0.0.0.0', CONTAINER_KERNEL_PORTS, PLACEHOLDER('generated at launch'), resolved.name),
        },
  });
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
    if (plan.secretData) {
      plan.pod.metadata!.uid = PLACEHOLDER('uid of the pod');
      const holds = [plan.connectionInfo !== undefined ? 'connection file (the key is generated at launch)' : '', ...Object.keys(plan.secretData).filter((k) => k !== 'connection.json')].filter(Boolean);
      docs.push(`# its Secret, owned by the pod, holding: ${holds.join(', ')}\n${YAML.stringify(buildPodSecret(plan.pod, plan.secretData))}`);
    }
  }
  return docs.join('---\n');
}
