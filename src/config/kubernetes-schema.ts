/** The YAML `kubernetes:` section: namespaces, credentials and pod defaults of the kubernetes backend. */
import { z } from 'zod';

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
    run_as_user: z.number().int().min(1).default(1000).describe('uid of pods whose profile sets none and whose home owner is unknown or root (never 0)'),
    run_as_group: z.number().int().min(1).optional().describe('gid likewise (default: run_as_user)'),
    fail_unschedulable: z
      .boolean()
      .default(true)
      .describe('report an unschedulable pod as failed at once; set false when a cluster autoscaler may add a node'),
  })
  .strict();
export type KubernetesConfig = z.infer<typeof kubernetesConfigSchema>;

const labelMap = z.record(z.string(), z.string());
const pullPolicy = z.enum(['Always', 'IfNotPresent', 'Never']);

/**
 * A profile's `kubernetes:` block: KubeSpawner's options for server pods (pod-spec names). Checked when
 * the configuration loads (a typo stops start-up naming the profile and key) and again by the backend.
 * Structures the API server knows better (tolerations, affinity, volumes) are checked by it (422).
 */
export const kubernetesOverridesSchema = z
  .object({
    image_pull_policy: pullPolicy.optional(),
    imagePullPolicy: pullPolicy.optional(),
    imagePullSecrets: z.array(z.union([z.string().min(1), z.object({ name: z.string().min(1) }).strict()])).optional(),
    nodeSelector: labelMap.optional(),
    tolerations: z.array(z.unknown()).optional(),
    affinity: z.record(z.string(), z.unknown()).optional(),
    volumes: z.array(z.unknown()).optional(),
    volumeMounts: z.array(z.unknown()).optional(),
    runAsUser: z.number().int().min(1, 'runAsUser 0 (root) is refused; workloads never run as root').optional(),
    runAsGroup: z.number().int().min(0).optional(),
    fsGroup: z.number().int().min(0).optional(),
    supplementalGroups: z.array(z.number().int().min(0)).optional(),
    serviceAccountName: z.string().min(1).optional(),
    automountServiceAccountToken: z.boolean().optional(),
    labels: labelMap.optional(),
    annotations: labelMap.optional(),
    priorityClassName: z.string().min(1).optional(),
    extraResourceLimits: z.record(z.string(), z.string()).optional(),
  })
  .strict();
export type KubernetesOverrides = z.infer<typeof kubernetesOverridesSchema>;
