/**
 * Pure functions turning a `WorkloadSpec` into the Pod (and connection Secret) spawngate creates.
 * No I/O: the dry-run command and the manifest tests call these directly.
 *
 * Kernel connection info: the kernels module passes the kernel's connection JSON (ports, key) in
 * `spec.env.SPAWNGATE_CONNECTION_INFO`. It never reaches the pod spec (a pod's env is readable by anyone
 * who may `get pods`); instead it goes into a Secret named after the pod plus a per-instance suffix, owned by the pod
 * (ownerReference, so Kubernetes garbage-collects it with the pod), mounted read-only at
 * `/var/run/spawngate/connection.json`, and `SPAWNGATE_CONNECTION_SOURCE` tells `spawngate.launcher`
 * where to read it. The Secret can only be created after the pod, because it needs the pod's uid.
 *
 * Tokens likewise: the variables of SECRET_ENV_NAMES (a server's hub API token and gateway token) go
 * into the same per-pod Secret, one key per variable, and the container's env names them with
 * `valueFrom.secretKeyRef` — never their values.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { V1Container, V1Pod, V1Secret, V1Volume, V1VolumeMount } from '@kubernetes/client-node';
import { PermanentBackendError, WORKLOAD_USER_LABEL, type WorkloadSpec } from '../types';
import { nameSlug } from '../support/name-escape';
import { substitutePorts } from '../port-placeholders';
import { CONNECTION_DIR, CONNECTION_FILE, CONNECTION_INFO_ENV, CONNECTION_SOURCE_ENV, SECRET_ENV_NAMES } from '../connection-secret';
import { k8sRules, kubernetesOverridesSchema, MIN_CPU_CORES, type EnvNameRule, type KubernetesOverrides } from '../../config';

export type { KubernetesOverrides };

export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'spawngate';
export const INSTANCE_LABEL = 'app.kubernetes.io/instance';
/** JSON of label values that had to be changed to fit the label syntax, by key (the originals). */
export const ORIGINAL_LABELS_ANNOTATION = 'spawngate.io/original-labels';
/** Hash of what spawngate asked for; a 409 adopts the existing pod only when it matches. */
export const SPEC_HASH_ANNOTATION = 'spawngate.io/spec-hash';
const CONNECTION_VOLUME = 'spawngate-connection';
const HOME_VOLUME = 'spawngate-home';

/** The user's home: a subPath of one (ReadWriteMany, e.g. EFS) claim, mounted where the home tree has it. */
export interface HomeMount {
  claimName: string;
  /** Path inside the pod, the same as in spawngate's home tree (`SPAWNGATE_HOME_ROOT/<user>`), so envs' Pythons resolve. */
  mountPath: string;
  /** Directory of the user inside the claim (the user name). */
  subPath: string;
  readOnly?: boolean;
}

export interface PodManifestOptions {
  namespace: string;
  /** `app.kubernetes.io/instance` value, to tell several spawngate installations apart. */
  instance?: string;
  /** uid when neither the profile nor the home owner gives one (runAsNonRoot needs a numeric uid). */
  defaultRunAsUser?: number;
  /** gid when neither the profile nor the home owner gives one. Default: the uid's value. */
  defaultRunAsGroup?: number;
  /** The user's home volume, if configured. */
  home?: HomeMount;
  /** Owner of the user's home (from a stat of the home tree); wins over the defaults, never over a profile. Never 0. */
  homeOwner?: { uid: number; gid: number };
  /** Suffix of the connection Secret's name (default: random), so each pod instance has its own Secret. */
  secretSuffix?: string;
  /** Which environment variable names the cluster accepts (from its version). Default `c-identifier`, valid everywhere. */
  envNameRule?: EnvNameRule;
  /**
   * Fraction of a CPU or memory limit requested when the spec sets the limit only (Kubernetes would
   * otherwise request the whole limit, which a node's allocatable never fits when the limit is the
   * node's size). Default 1: as Kubernetes does.
   */
  defaultRequestFraction?: number;
}

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_NAME = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * The value recorded under label `key` for `value`, valid as a label value (at most 63 characters of
 * `(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?`). The user label is always escaped with `nameSlug`, so
 * two users never share a value (`alice` stays `alice`, `a b` → `a-20b`, `Ünïcode.User` →
 * `c3-9cn-c3-afcode-2e-55ser--<hash>`); had valid names passed unchanged, `a-20b` and `a b` would share
 * one. Other labels keep valid values; an invalid one has its invalid characters replaced and a hash of
 * the original appended (`Alice@Example.com` → `Alice-Example.com-<8 hex>`). Either way a changed value's
 * original is kept in the `spawngate.io/original-labels` annotation. Deterministic.
 */
export function labelValueFor(key: string, value: string): string {
  if (key === WORKLOAD_USER_LABEL) return nameSlug(value, 63);
  if (value.length <= 63 && LABEL_VALUE.test(value)) return value;
  const hash = createHash('sha256').update(value).digest('hex').slice(0, 8);
  const readable = value.replace(/[^-A-Za-z0-9_.]/g, '-').replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
  return `${readable.slice(0, 54).replace(/[^A-Za-z0-9]+$/, '')}-${hash}`.replace(/^-/, '');
}

export function isValidLabelKey(key: string): boolean {
  const slash = key.lastIndexOf('/');
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) return false;
  return name.length <= 63 && LABEL_NAME.test(name);
}

/** The selector every spawngate-managed pod matches (the informer's and `list()`'s). */
export function managedSelector(instance?: string): string {
  return instance ? `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE},${INSTANCE_LABEL}=${instance}` : `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`;
}

/** Whether a pod with these labels matches `managedSelector(instance)` (read-through answers are checked so). */
export function isManaged(labels: Record<string, string>, instance?: string): boolean {
  return labels[MANAGED_BY_LABEL] === MANAGED_BY_VALUE && (!instance || labels[INSTANCE_LABEL] === instance);
}

/** Millicores, never `0m` (which Kubernetes reads as "no limit"): a smaller amount is refused. */
function cpuQuantity(field: string, cores: number): string {
  const milli = Math.round(cores * 1000);
  if (!(cores >= MIN_CPU_CORES) || milli < 1) {
    throw new PermanentBackendError(`kubernetes backend: ${field} ${cores} cores is below 1m (0.001); it would render as 0m, which means no limit`);
  }
  return `${milli}m`;
}

/** The request a limit-only resource gets: `fraction` of the limit, rounded down to whole units, at least 1. */
function defaultedRequest(limit: number, fraction: number): number {
  return Math.max(1, Math.floor(limit * fraction));
}

function checkOverrides(o: Record<string, unknown>): KubernetesOverrides {
  const parsed = kubernetesOverridesSchema.safeParse(o);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) =>
      i.code === 'unrecognized_keys' ? `unknown profile override(s) ${i.keys.join(', ')}` : i.path.length ? `override ${i.path.join('.')}: ${i.message}` : `override ${i.message}`,
    );
    throw new PermanentBackendError(`kubernetes backend: ${issues.join('; ')}`);
  }
  return parsed.data;
}

/**
 * Ports as given; a `0` ("backend's choice") becomes a fixed port derived from the workload and port
 * names. A pod has its own network namespace, so any port is free inside it, and a derived port keeps a
 * retried launch's spec (and its spec hash) identical.
 */
function podPorts(spec: WorkloadSpec): Record<string, number> {
  const out: Record<string, number> = {};
  const used = new Set(Object.values(spec.ports ?? {}).filter((p) => p > 0));
  for (const [name, port] of Object.entries(spec.ports ?? {})) {
    if (port > 0 && port < 65536) {
      out[name] = port;
      continue;
    }
    if (port !== 0) continue;
    let p = 20000 + (createHash('sha256').update(`${spec.name}/${name}`).digest().readUInt16BE(0) % 10000);
    while (used.has(p)) p++;
    used.add(p);
    out[name] = p;
  }
  return out;
}

/** Everything `buildPod` decided, plus what goes into the pod's Secret (if anything). */
export interface PodPlan {
  pod: V1Pod;
  /** The kernel's connection JSON, if a kernel passed one (also in `secretData`). */
  connectionInfo?: string;
  /** The pod's Secret: `connection.json` and/or one key per secret variable. Absent: no Secret. */
  secretData?: Record<string, string>;
}

/**
 * The Pod for `spec`. Throws PermanentBackendError for specs no retry can fix (bad name, label key,
 * unknown override, root uid).
 */
export function buildPod(spec: WorkloadSpec, opts: PodManifestOptions): PodPlan {
  if (spec.name.length > 63 || !DNS_LABEL.test(spec.name)) {
    throw new PermanentBackendError(`kubernetes backend: workload name ${JSON.stringify(spec.name)} is not a DNS label`);
  }
  if (!spec.image) throw new PermanentBackendError(`kubernetes backend: workload ${spec.name} has no image`);
  if (!spec.command.length) throw new PermanentBackendError(`kubernetes backend: workload ${spec.name} has no command`);
  const o = checkOverrides(spec.overrides ?? {});
  const ports = podPorts(spec);

  const labels: Record<string, string> = {};
  const originals: Record<string, string> = {};
  const put = (key: string, value: string) => {
    if (!isValidLabelKey(key)) throw new PermanentBackendError(`kubernetes backend: invalid label key ${JSON.stringify(key)}`);
    const v = labelValueFor(key, value);
    if (v !== value) originals[key] = value;
    labels[key] = v;
  };
  for (const [k, v] of Object.entries(spec.labels)) put(k, v);
  for (const [k, v] of Object.entries(o.labels ?? {})) put(k, v); // KubeSpawner's extra_labels; ours below win
  // Enterprise Gateway's conventions plus the recommended app.kubernetes.io labels.
  put('app', 'spawngate');
  put('component', spec.kind);
  put('app.kubernetes.io/name', 'spawngate');
  put('app.kubernetes.io/component', spec.kind);
  put(MANAGED_BY_LABEL, MANAGED_BY_VALUE);
  if (opts.instance) put(INSTANCE_LABEL, opts.instance);

  const { [CONNECTION_INFO_ENV]: connectionInfo, ...env } = spec.env;
  const envProblems = k8sRules.envProblems('env', env, opts.envNameRule ?? 'c-identifier');
  if (envProblems.length) throw new PermanentBackendError(`kubernetes backend: ${spec.name}: ${envProblems.join('; ')}`);
  // A pod of the same name created again (a kernel restart) must not find the previous pod's Secret:
  // that one is garbage-collected asynchronously after its owner is gone, possibly after the new pod
  // started to wait for it. Each pod instance therefore names its own Secret.
  const secretName = `${spec.name}-${opts.secretSuffix ?? randomBytes(4).toString('hex')}`;
  const secretEnv: Record<string, string> = {};
  const envList: V1Container['env'] & object = Object.entries(env).map(([name, value]) => {
    if (!SECRET_ENV_NAMES.includes(name)) return { name, value: substitutePorts(value, ports) };
    secretEnv[name] = substitutePorts(value, ports);
    return { name, valueFrom: { secretKeyRef: { name: secretName, key: name } } };
  });
  if (spec.kind === 'kernel') {
    // Where Enterprise Gateway's kernel images expect to learn their pod and namespace.
    const eg: Record<string, string | undefined> = { KERNEL_POD_NAME: spec.name, KERNEL_NAMESPACE: opts.namespace, KERNEL_SERVICE_ACCOUNT_NAME: o.serviceAccountName };
    for (const [name, value] of Object.entries(eg)) if (value !== undefined && env[name] === undefined) envList.push({ name, value });
  }
  const volumes = [...((o.volumes ?? []) as V1Volume[])];
  const volumeMounts = [...((o.volumeMounts ?? []) as V1VolumeMount[])];
  if (opts.home) {
    const h = opts.home;
    volumes.push({ name: HOME_VOLUME, persistentVolumeClaim: { claimName: h.claimName, ...(h.readOnly ? { readOnly: true } : {}) } });
    volumeMounts.push({ name: HOME_VOLUME, mountPath: h.mountPath, subPath: h.subPath, ...(h.readOnly ? { readOnly: true } : {}) });
    // Images set HOME for their own user; here the user is the home's owner, so HOME is the mounted home.
    if (!envList.some((e) => e.name === 'HOME')) envList.push({ name: 'HOME', value: h.mountPath });
  }
  if (connectionInfo !== undefined) {
    envList.push({ name: CONNECTION_SOURCE_ENV, value: CONNECTION_FILE });
    volumes.push({
      name: CONNECTION_VOLUME,
      secret: { secretName, defaultMode: 0o440, items: [{ key: 'connection.json', path: 'connection.json' }] },
    });
    volumeMounts.push({ name: CONNECTION_VOLUME, mountPath: CONNECTION_DIR, readOnly: true });
  }

  const requests: Record<string, string> = {};
  const limits: Record<string, string> = { ...(o.extraResourceLimits ?? {}) };
  // Extended resources (GPUs, devices) cannot be overcommitted: the API server wants request = limit.
  for (const [name, q] of Object.entries(limits)) if (name.includes('/')) requests[name] = q;
  const r = spec.resources ?? {};
  const fraction = opts.defaultRequestFraction ?? 1;
  const cpuRequest = r.cpuRequest ?? (r.cpuLimit !== undefined ? Math.max(MIN_CPU_CORES, r.cpuLimit * fraction) : undefined);
  const memRequest = r.memoryRequestMiB ?? (r.memoryLimitMiB !== undefined ? defaultedRequest(r.memoryLimitMiB, fraction) : undefined);
  if (cpuRequest !== undefined) requests.cpu = cpuQuantity('cpu request', cpuRequest);
  if (r.cpuLimit !== undefined) limits.cpu = cpuQuantity('cpu limit', r.cpuLimit);
  if (memRequest !== undefined) requests.memory = `${memRequest}Mi`;
  if (r.memoryLimitMiB !== undefined) limits.memory = `${r.memoryLimitMiB}Mi`;
  if (r.gpuLimit) limits['nvidia.com/gpu'] = requests['nvidia.com/gpu'] = String(r.gpuLimit);

  const container: V1Container = {
    name: spec.kind === 'server' ? 'notebook' : 'kernel',
    image: spec.image,
    command: spec.command.map((a) => substitutePorts(a, ports)),
    env: envList,
    resources: {
      ...(Object.keys(requests).length ? { requests } : {}),
      ...(Object.keys(limits).length ? { limits } : {}),
    },
    ports: Object.entries(ports).map(([name, containerPort]) =>
      k8sRules.isIanaSvcName(name) ? { name, containerPort } : { containerPort },
    ),
    securityContext: {
      runAsNonRoot: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
    },
    ...(spec.workingDir ? { workingDir: spec.workingDir } : spec.kind === 'server' && opts.home ? { workingDir: opts.home.mountPath } : {}),
    ...((o.imagePullPolicy ?? o.image_pull_policy) ? { imagePullPolicy: o.imagePullPolicy ?? o.image_pull_policy } : {}),
    ...(volumeMounts.length ? { volumeMounts } : {}),
  };

  const annotations: Record<string, string> = { ...(o.annotations ?? {}) };
  if (Object.keys(originals).length) annotations[ORIGINAL_LABELS_ANNOTATION] = JSON.stringify(originals);

  // A profile's uid/gid win (admins rely on them); else the home's owner so files stay theirs; else the
  // configured default. The connection Secret is 0440, readable through fsGroup (the kubelet chgrps it).
  const runAsUser = o.runAsUser ?? opts.homeOwner?.uid ?? opts.defaultRunAsUser;
  const runAsGroup = o.runAsGroup ?? (o.runAsUser === undefined ? opts.homeOwner?.gid : undefined) ?? opts.defaultRunAsGroup ?? runAsUser;
  const fsGroup = o.fsGroup ?? runAsGroup;
  const pod: V1Pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: spec.name, namespace: opts.namespace, labels, annotations },
    spec: {
      restartPolicy: 'Never',
      automountServiceAccountToken: o.automountServiceAccountToken ?? false,
      enableServiceLinks: false,
      ...(o.serviceAccountName ? { serviceAccountName: o.serviceAccountName } : {}),
      securityContext: {
        runAsNonRoot: true,
        seccompProfile: { type: 'RuntimeDefault' },
        ...(runAsUser !== undefined ? { runAsUser } : {}),
        ...(runAsGroup !== undefined ? { runAsGroup } : {}),
        ...(fsGroup !== undefined ? { fsGroup } : {}),
        ...(o.supplementalGroups ? { supplementalGroups: o.supplementalGroups } : {}),
      },
      containers: [container],
      ...(volumes.length ? { volumes } : {}),
      ...(o.nodeSelector ? { nodeSelector: o.nodeSelector } : {}),
      ...(o.tolerations ? { tolerations: o.tolerations as NonNullable<V1Pod['spec']>['tolerations'] } : {}),
      ...(o.affinity ? { affinity: o.affinity as NonNullable<V1Pod['spec']>['affinity'] } : {}),
      ...(o.priorityClassName ? { priorityClassName: o.priorityClassName } : {}),
      ...(o.imagePullSecrets
        ? { imagePullSecrets: o.imagePullSecrets.map((s) => (typeof s === 'string' ? { name: s } : s)) }
        : {}),
    },
  };
  // The hash covers what was asked for (spec, connection info and tokens), so a retry of the same
  // launch matches and one with other tokens does not.
  const hasSecretEnv = Object.keys(secretEnv).length > 0;
  annotations[SPEC_HASH_ANNOTATION] = createHash('sha256')
    .update(JSON.stringify([pod.spec, labels, connectionInfo ?? null, ...(hasSecretEnv ? [secretEnv] : [])]).replaceAll(secretName, spec.name))
    .digest('hex')
    .slice(0, 32);
  // The profile's annotations passed at load; spawngate's own (original labels, spec hash) count too.
  const annotationProblems = k8sRules.annotationsProblems('annotations', annotations);
  if (annotationProblems.length) throw new PermanentBackendError(`kubernetes backend: ${spec.name}: ${annotationProblems.join('; ')}`);
  const secretData = { ...secretEnv, ...(connectionInfo !== undefined ? { 'connection.json': connectionInfo } : {}) };
  return {
    pod,
    ...(connectionInfo !== undefined ? { connectionInfo } : {}),
    ...(Object.keys(secretData).length ? { secretData } : {}),
  };
}

/** The pod's Secret (a kernel's connection file, a server's tokens), owned by (and deleted with) its pod. */
export function buildPodSecret(pod: V1Pod, data: Record<string, string>): V1Secret {
  const meta = pod.metadata!;
  // The API server refuses a Secret over 1 MiB (keys and values together); say so before sending it.
  const bytes = Object.entries(data).reduce((n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v), 0);
  if (bytes > k8sRules.MAX_SECRET_BYTES) {
    throw new PermanentBackendError(`kubernetes backend: the Secret of ${meta.name} (connection file and tokens) is larger than a Secret may be (1 MiB)`);
  }
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: {
      name: connectionSecretName(pod),
      namespace: meta.namespace,
      labels: { ...(meta.labels ?? {}) },
      ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: meta.name!, uid: meta.uid!, blockOwnerDeletion: false }],
    },
    stringData: { ...data },
  };
}

/** The Secret a pod reads its connection file and tokens from (an adopted pod's own, as it was created). */
export function connectionSecretName(pod: V1Pod): string {
  return (
    pod.spec?.volumes?.find((v) => v.name === CONNECTION_VOLUME)?.secret?.secretName ??
    pod.spec?.containers?.[0]?.env?.find((e) => e.valueFrom?.secretKeyRef)?.valueFrom?.secretKeyRef?.name ??
    pod.metadata!.name!
  );
}

/** Labels as the caller gave them: escaped values replaced by the originals kept in the annotation. */
export function originalLabels(pod: V1Pod): Record<string, string> {
  const labels = { ...(pod.metadata?.labels ?? {}) };
  const raw = pod.metadata?.annotations?.[ORIGINAL_LABELS_ANNOTATION];
  if (raw) {
    try {
      Object.assign(labels, JSON.parse(raw) as Record<string, string>);
    } catch {
      // a hand-edited annotation: keep the escaped values
    }
  }
  return labels;
}
