/** The YAML `kubernetes:` section: namespaces, credentials and pod defaults of the kubernetes backend. */
import { z } from 'zod';
import {
  annotationsProblems,
  extraResourcesProblems,
  isDns1123Subdomain,
  labelsProblems,
  tolerationProblems,
  volumeMountProblems,
  volumeProblems,
} from './k8s-validation';

const dnsLabel = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export const kubernetesConfigSchema = z
  .object({
    namespace: z
      .string()
      .regex(dnsLabel, 'namespace must be a DNS label')
      .optional()
      .describe('namespace of server and kernel pods (default: SPAWNGATE_KUBERNETES_NAMESPACE, else the in-cluster namespace, else default)'),
    experiment_namespaces: z
      .object({
        template: z
          .string()
          .regex(/^[a-z0-9-]*\{experiment\}[a-z0-9-]*$/, 'template must contain {experiment} and otherwise only a-z, 0-9 and -')
          .describe('namespace of an experiment\'s kernels, e.g. sg-{experiment}'),
        max_namespaces: z.number().int().min(2).max(500).default(50).describe('most namespaces watched at once (one pod informer and one events watch each)'),
      })
      .strict()
      .optional()
      .describe('one namespace per experiment: {template: "sg-{experiment}", max_namespaces: 50}; each needs the Role of docs/kubernetes-rbac.md (default: every pod in `namespace`)'),
    kubeconfig: z
      .string()
      .min(1)
      .optional()
      .describe('kubeconfig file (default: KUBECONFIG, ~/.kube/config, else the in-cluster service account)'),
    instance: z
      .string()
      .regex(/^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/, 'instance must be a label value')
      .optional()
      .describe('app.kubernetes.io/instance label on every pod, to tell several installations in one namespace apart'),
    home_volume: z
      .object({
        claim_name: z.string().regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, 'claim_name must be a DNS subdomain').describe('PersistentVolumeClaim holding the homes (ReadWriteMany, e.g. EFS)'),
        read_only: z.boolean().default(false).describe('mount the home read-only'),
      })
      .strict()
      .optional()
      .describe('users\' homes in pods: {claim_name}, subPath = user, mounted at SPAWNGATE_HOME_ROOT/<user>; pods run as the home\'s owner (default: no home volume)'),
    run_as_user: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe('a shared uid for pods whose profile sets none, instead of the home\'s owner (default: the owner of SPAWNGATE_HOME_ROOT/<user>; a missing or root-owned home is refused)'),
    run_as_group: z.number().int().min(1).optional().describe('gid with run_as_user (default: run_as_user)'),
    default_request_fraction: z
      .number()
      .gt(0)
      .max(1)
      .default(0.5)
      .describe('CPU and memory requested, as a fraction of the limit, when only a limit is set (1 = Kubernetes\' own default, request = limit)'),
    fail_unschedulable: z
      .boolean()
      .default(true)
      .describe('report an unschedulable pod as failed at once; set false when a cluster autoscaler may add a node'),
  })
  .strict();
export type KubernetesConfig = z.infer<typeof kubernetesConfigSchema>;

const labelMap = z.record(z.string(), z.string());
const pullPolicy = z.enum(['Always', 'IfNotPresent', 'Never']);

const NEVER_ROOT_GROUP = 'group 0 (root) is refused; workloads never run as root';
const gid = z.number().int().min(1, NEVER_ROOT_GROUP);
const dnsSubdomain = (what: string) =>
  z.string().min(1).refine(isDns1123Subdomain, `${what} must be a DNS-1123 subdomain (lower-case a-z, 0-9, "-", ".", at most 253)`);

/** Pod fields that place a pod and name what it may use: allowed for server and kernel pods alike. */
const placementShape = {
  image_pull_policy: pullPolicy.optional(),
  imagePullPolicy: pullPolicy.optional(),
  imagePullSecrets: z.array(z.union([dnsSubdomain('a Secret name'), z.object({ name: dnsSubdomain('a Secret name') }).strict()])).optional(),
  nodeSelector: labelMap.optional(),
  tolerations: z.array(z.unknown()).optional(),
  affinity: z.record(z.string(), z.unknown()).optional(),
  serviceAccountName: dnsSubdomain('serviceAccountName').optional(),
  labels: labelMap.optional(),
  annotations: labelMap.optional(),
  priorityClassName: dnsSubdomain('priorityClassName').optional(),
  extraResourceLimits: z.record(z.string(), z.string()).optional(),
};

type PodValues = { [K in keyof typeof placementShape]?: z.infer<(typeof placementShape)[K]> } & { volumes?: unknown[]; volumeMounts?: unknown[] };

/** The values of a block by the API server's rules (zod checks the shapes; this the contents). */
function checkPodValues(o: PodValues, ctx: z.RefinementCtx): void {
  const report = (problems: string[]) => {
    for (const message of problems) ctx.addIssue({ code: 'custom', message });
  };
  if (o.nodeSelector) report(labelsProblems('nodeSelector', o.nodeSelector));
  if (o.labels) report(labelsProblems('labels', o.labels));
  if (o.annotations) report(annotationsProblems('annotations', o.annotations));
  o.tolerations?.forEach((t, i) => report(tolerationProblems(`tolerations[${i}]`, t)));
  o.volumes?.forEach((v, i) => report(volumeProblems(`volumes[${i}]`, v)));
  const names = new Set((o.volumes ?? []).map((v) => (v as { name?: unknown } | null)?.name).filter((n): n is string => typeof n === 'string'));
  o.volumeMounts?.forEach((m, i) => report(volumeMountProblems(`volumeMounts[${i}]`, m, names)));
  if (o.extraResourceLimits) report(extraResourcesProblems('extraResourceLimits', o.extraResourceLimits));
}

/**
 * A profile's `kubernetes:` block: KubeSpawner's options for server pods (pod-spec names). Checked when
 * the configuration loads — keys and values, by the API server's rules (k8s-validation.ts), so a typo
 * or a value Kubernetes would refuse stops start-up naming the profile and field — and again by the
 * backend before anything is sent. `affinity` is passed through and checked by the API server (422).
 */
export const kubernetesOverridesSchema = z
  .object({
    ...placementShape,
    volumes: z.array(z.unknown()).optional(),
    volumeMounts: z.array(z.unknown()).optional(),
    runAsUser: z.number().int().min(1, 'runAsUser 0 (root) is refused; workloads never run as root').optional(),
    runAsGroup: gid.optional(),
    fsGroup: gid.optional(),
    supplementalGroups: z.array(gid).optional(),
    automountServiceAccountToken: z.boolean().optional(),
  })
  .strict()
  .superRefine(checkPodValues);
export type KubernetesOverrides = z.infer<typeof kubernetesOverridesSchema>;

/**
 * Kernel pods' placement (`kernels.kubernetes`, `kernels.experiment_kubernetes.<experiment>`): where
 * they may run and what they may pull. No identity fields: a kernel runs as the owner of its user's home.
 */
export const kernelPodSchema = z
  .object(placementShape)
  .strict()
  .superRefine(checkPodValues)
  .describe('pod placement of kernels: nodeSelector, tolerations, affinity, imagePullSecrets, priorityClassName, serviceAccountName, labels, annotations, extraResourceLimits, image_pull_policy');
export type KernelPodOverrides = z.infer<typeof kernelPodSchema>;
