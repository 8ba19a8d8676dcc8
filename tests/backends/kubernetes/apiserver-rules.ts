/**
 * The field rules a real Kubernetes API server (and its Pod Security admission, scheduler and kubelet)
 * applies beyond the OpenAPI schema, for the stand-in in fake-apiserver.ts. Written from the server's
 * side, independently of spawngate's own checks (src/config/k8s-validation.ts), so a test where
 * spawngate lets something through that the server refuses fails here.
 *
 * Sources read: apimachinery `pkg/util/validation/validation.go` (qualified names, label values,
 * DNS-1123, IANA_SVC_NAME, env var names, config-map keys), `pkg/api/validation/objectmeta.go`
 * (annotations: keys, 256 KiB total), `pkg/apis/core/validation/validation.go` (tolerations,
 * extended resources, volumes, sub-paths, Secret size, service account and priority class names) and
 * pod-security-admission's `restricted` policy.
 */

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export interface Cause {
  reason: 'FieldValueInvalid' | 'FieldValueRequired' | 'FieldValueNotSupported' | 'FieldValueForbidden' | 'FieldValueDuplicate' | 'FieldValueTooLong';
  message: string;
  field: string;
}

/** The cluster the stand-in pretends to be. */
export interface ClusterRules {
  /** Minor version of Kubernetes 1.x (served on /version). Env names are relaxed from 32. */
  minor: number;
}

const SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

const subdomain = (v: unknown) => typeof v === 'string' && v.length <= 253 && SUBDOMAIN.test(v);
const dnsLabel = (v: unknown) => typeof v === 'string' && v.length <= 63 && LABEL.test(v);

function qualified(v: string): boolean {
  const parts = v.split('/');
  if (parts.length > 2) return false;
  if (parts.length === 2 && !subdomain(parts[0])) return false;
  const name = parts[parts.length - 1]!;
  return name.length <= 63 && NAME_PART.test(name);
}

const labelValue = (v: unknown) => typeof v === 'string' && v.length <= 63 && LABEL_VALUE.test(v);

function chdirPrefix(v: string): boolean {
  return v === '.' || v === '..' || v.startsWith('..');
}

function envName(v: string, minor: number): boolean {
  if (minor >= 32) return v.length > 0 && [...v].every((c) => c >= ' ' && c <= '~' && c !== '=');
  return /^[-._a-zA-Z][-._a-zA-Z0-9]*$/.test(v) && !chdirPrefix(v);
}

const configKey = (v: unknown) => typeof v === 'string' && v.length > 0 && v.length <= 253 && /^[-._a-zA-Z0-9]+$/.test(v) && !chdirPrefix(v);

function ianaSvcName(v: string): boolean {
  return v.length >= 1 && v.length <= 15 && /^[-a-z0-9]+$/.test(v) && /[a-z]/.test(v) && !v.includes('--') && !v.startsWith('-') && !v.endsWith('-');
}

/** Resources the API server lets be overcommitted; every other name with a domain is an extended resource. */
function extended(name: string): boolean {
  if (['cpu', 'memory', 'ephemeral-storage'].includes(name) || name.startsWith('hugepages-')) return false;
  const domain = name.includes('/') ? name.split('/')[0]! : '';
  return domain !== '' && domain !== 'kubernetes.io' && !domain.endsWith('.kubernetes.io');
}

/** A quantity's value in units (the server's own parsing, enough for the quantities tests use). */
export function quantityValue(q: unknown): number {
  const m = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/.exec(String(q));
  if (!m) return Number.NaN;
  const scale: Record<string, number> = { m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
  return Number(m[1]) * (m[2] ? scale[m[2]]! : 1);
}

function metadataCauses(meta: Obj, out: Cause[]): void {
  for (const [k, v] of Object.entries((meta.labels ?? {}) as Record<string, unknown>)) {
    if (!qualified(k)) out.push({ reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(k)}: name part must consist of alphanumeric characters, '-', '_' or '.'`, field: 'metadata.labels' });
    if (!labelValue(v)) out.push({ reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(v)}`, field: `metadata.labels.${k}` });
  }
  let total = 0;
  for (const [k, v] of Object.entries((meta.annotations ?? {}) as Record<string, unknown>)) {
    if (!qualified(k.toLowerCase())) out.push({ reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(k)}`, field: 'metadata.annotations' });
    total += k.length + String(v).length;
  }
  if (total > 256 * 1024) out.push({ reason: 'FieldValueTooLong', message: 'may not be more than 262144 bytes', field: 'metadata.annotations' });
}

function tolerationCauses(t: Obj, field: string, out: Cause[]): void {
  const bad = (f: string, message: string) => out.push({ reason: 'FieldValueInvalid', message, field: `${field}.${f}` });
  if (t.key) {
    if (!qualified(t.key)) bad('key', `Invalid value: ${JSON.stringify(t.key)}`);
  } else if (t.operator !== 'Exists') bad('operator', 'operator must be Exists when `key` is empty, which means "match all values and all keys"');
  if (t.tolerationSeconds !== undefined && t.effect !== 'NoExecute') bad('effect', 'effect must be \'NoExecute\' when `tolerationSeconds` is set');
  switch (t.operator ?? '') {
    case '':
    case 'Equal':
      if (t.value && !labelValue(t.value)) bad('value', `Invalid value: ${JSON.stringify(t.value)}`);
      break;
    case 'Exists':
      if (t.value) bad('operator', 'value must be empty when `operator` is \'Exists\'');
      break;
    default:
      out.push({ reason: 'FieldValueNotSupported', message: `Unsupported value: ${JSON.stringify(t.operator)}: supported values: "Equal", "Exists"`, field: `${field}.operator` });
  }
  if (t.effect && !['NoSchedule', 'PreferNoSchedule', 'NoExecute'].includes(t.effect)) {
    out.push({ reason: 'FieldValueNotSupported', message: `Unsupported value: ${JSON.stringify(t.effect)}`, field: `${field}.effect` });
  }
}

function resourceCauses(r: Obj, field: string, out: Cause[]): void {
  const requests = (r.requests ?? {}) as Record<string, string>;
  const limits = (r.limits ?? {}) as Record<string, string>;
  for (const [kind, map] of [['requests', requests], ['limits', limits]] as const) {
    for (const [name, q] of Object.entries(map)) {
      if (!qualified(name)) out.push({ reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(name)}`, field: `${field}.${kind}` });
      else if (!name.includes('/') && !['cpu', 'memory', 'ephemeral-storage'].includes(name) && !name.startsWith('hugepages-')) {
        out.push({ reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(name)}: must be a standard resource type or fully qualified`, field: `${field}.${kind}[${name}]` });
      }
      if (extended(name) && !Number.isInteger(quantityValue(q))) {
        out.push({ reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(q)}: must be an integer`, field: `${field}.${kind}[${name}]` });
      }
    }
  }
  for (const [name, q] of Object.entries(requests)) {
    if (!extended(name)) {
      if (limits[name] !== undefined && quantityValue(q) > quantityValue(limits[name])) {
        out.push({ reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(q)}: must be less than or equal to ${name} limit of ${limits[name]}`, field: `${field}.requests[${name}]` });
      }
      continue;
    }
    if (limits[name] === undefined) out.push({ reason: 'FieldValueRequired', message: 'Limit must be set for non overcommitable resources', field: `${field}.limits[${name}]` });
    else if (quantityValue(limits[name]) !== quantityValue(q)) out.push({ reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(q)}: must be equal to ${name} limit of ${limits[name]}`, field: `${field}.requests[${name}]` });
  }
}

function volumeCauses(spec: Obj, out: Cause[]): Set<string> {
  const names = new Set<string>();
  (spec.volumes ?? []).forEach((v: Obj, i: number) => {
    const field = `spec.volumes[${i}]`;
    if (!dnsLabel(v.name)) out.push({ reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(v.name)}: a lowercase RFC 1123 label must consist of…`, field: `${field}.name` });
    if (names.has(v.name)) out.push({ reason: 'FieldValueDuplicate', message: `Duplicate value: ${JSON.stringify(v.name)}`, field: `${field}.name` });
    names.add(v.name);
    if (v.secret) {
      if (!subdomain(v.secret.secretName)) out.push({ reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(v.secret.secretName)}`, field: `${field}.secret.secretName` });
      (v.secret.items ?? []).forEach((it: Obj, j: number) => {
        if (!configKey(it.key)) out.push({ reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(it.key)}: a valid config key must consist of alphanumeric characters, '-', '_' or '.'`, field: `${field}.secret.items[${j}].key` });
        if (typeof it.path !== 'string' || it.path.startsWith('/') || it.path.split('/').includes('..')) out.push({ reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(it.path)}`, field: `${field}.secret.items[${j}].path` });
      });
    }
  });
  return names;
}

/** Everything in a Pod the real API server refuses with 422 (beyond the OpenAPI schema). */
export function podCauses(pod: Obj, cluster: ClusterRules): Cause[] {
  const out: Cause[] = [];
  metadataCauses(pod.metadata ?? {}, out);
  const spec = (pod.spec ?? {}) as Obj;
  for (const [k, v] of Object.entries((spec.nodeSelector ?? {}) as Record<string, unknown>)) {
    if (!qualified(k)) out.push({ reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(k)}`, field: 'spec.nodeSelector' });
    if (!labelValue(v)) out.push({ reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(v)}`, field: `spec.nodeSelector.${k}` });
  }
  (spec.tolerations ?? []).forEach((t: Obj, i: number) => tolerationCauses(t, `spec.tolerations[${i}]`, out));
  for (const f of ['serviceAccountName', 'priorityClassName'] as const) {
    if (spec[f] !== undefined && spec[f] !== '' && !subdomain(spec[f])) out.push({ reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(spec[f])}: a lowercase RFC 1123 subdomain must consist of…`, field: `spec.${f}` });
  }
  const volumes = volumeCauses(spec, out);
  (spec.containers ?? []).forEach((c: Obj, i: number) => {
    const field = `spec.containers[${i}]`;
    (c.env ?? []).forEach((e: Obj, j: number) => {
      if (!envName(String(e.name ?? ''), cluster.minor)) {
        const rule = cluster.minor >= 32 ? 'a valid environment variable name must consist only of printable ASCII characters other than \'=\'' : 'a valid environment variable name must consist of alphabetic characters, digits, \'_\', \'-\', or \'.\', and must not start with a digit';
        out.push({ reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(e.name)}: ${rule}`, field: `${field}.env[${j}].name` });
      }
    });
    const portNames = new Set<string>();
    (c.ports ?? []).forEach((p: Obj, j: number) => {
      if (p.name === undefined) return;
      if (!ianaSvcName(String(p.name))) out.push({ reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(p.name)}: must be no more than 15 characters, contain only lowercase a-z, 0-9 and '-'…`, field: `${field}.ports[${j}].name` });
      if (portNames.has(p.name)) out.push({ reason: 'FieldValueDuplicate', message: `Duplicate value: ${JSON.stringify(p.name)}`, field: `${field}.ports[${j}].name` });
      portNames.add(p.name);
    });
    resourceCauses(c.resources ?? {}, `${field}.resources`, out);
    (c.volumeMounts ?? []).forEach((m: Obj, j: number) => {
      const mf = `${field}.volumeMounts[${j}]`;
      if (!volumes.has(m.name)) out.push({ reason: 'FieldValueNotSupported', message: `Not found: ${JSON.stringify(m.name)}`, field: `${mf}.name` });
      if (typeof m.subPath === 'string' && m.subPath !== '') {
        if (m.subPath.startsWith('/')) out.push({ reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(m.subPath)}: must be a relative path`, field: `${mf}.subPath` });
        if (m.subPath.split('/').includes('..')) out.push({ reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(m.subPath)}: must not contain '..'`, field: `${mf}.subPath` });
      }
    });
  });
  return out;
}

/** What the real API server refuses in a Secret (beyond the schema): key names and 1 MiB of data. */
export function secretCauses(secret: Obj): Cause[] {
  const out: Cause[] = [];
  metadataCauses(secret.metadata ?? {}, out);
  let total = 0;
  for (const [field, map, decode] of [
    ['data', secret.data ?? {}, (v: string) => Buffer.from(v, 'base64').length],
    ['stringData', secret.stringData ?? {}, (v: string) => Buffer.byteLength(v)],
  ] as const) {
    for (const [k, v] of Object.entries(map as Record<string, string>)) {
      if (!configKey(k)) out.push({ reason: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(k)}: a valid config key must consist of alphanumeric characters, '-', '_' or '.'`, field: `${field}[${k}]` });
      total += decode(v);
    }
  }
  if (total > 1024 * 1024) out.push({ reason: 'FieldValueTooLong', message: 'Too long: must have at most 1048576 bytes', field: 'data' });
  return out;
}

const RESTRICTED_VOLUMES = ['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret'];

/**
 * Pod Security admission, level `restricted` (namespace label `pod-security.kubernetes.io/enforce`):
 * the violations, as the 403 message lists them; empty when the pod passes.
 */
export function restrictedViolations(pod: Obj): string[] {
  const spec = (pod.spec ?? {}) as Obj;
  const psc = (spec.securityContext ?? {}) as Obj;
  const out: string[] = [];
  const badVolumes = (spec.volumes ?? []).filter((v: Obj) => Object.keys(v).some((k) => k !== 'name' && !RESTRICTED_VOLUMES.includes(k)));
  if (badVolumes.length) out.push(`restricted volume types (volumes ${badVolumes.map((v: Obj) => `"${v.name}"`).join(', ')} use ${badVolumes.map((v: Obj) => Object.keys(v).find((k) => k !== 'name')).join(', ')})`);
  if (spec.hostNetwork || spec.hostPID || spec.hostIPC) out.push('host namespaces');
  for (const c of spec.containers ?? []) {
    const csc = (c.securityContext ?? {}) as Obj;
    if (csc.privileged) out.push(`privileged (container "${c.name}")`);
    if (csc.allowPrivilegeEscalation !== false) out.push(`allowPrivilegeEscalation != false (container "${c.name}")`);
    if (!(csc.capabilities?.drop ?? []).includes('ALL')) out.push(`unrestricted capabilities (container "${c.name}" must set securityContext.capabilities.drop=["ALL"])`);
    if ((csc.capabilities?.add ?? []).some((a: string) => a !== 'NET_BIND_SERVICE')) out.push(`unrestricted capabilities (container "${c.name}" adds ${csc.capabilities.add.join(', ')})`);
    if ((csc.runAsNonRoot ?? psc.runAsNonRoot) !== true) out.push(`runAsNonRoot != true (container "${c.name}")`);
    if ((csc.runAsUser ?? psc.runAsUser) === 0) out.push(`runAsUser=0 (container "${c.name}")`);
    const seccomp = csc.seccompProfile?.type ?? psc.seccompProfile?.type;
    if (seccomp !== 'RuntimeDefault' && seccomp !== 'Localhost') out.push(`seccompProfile (container "${c.name}" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")`);
    for (const p of c.ports ?? []) if (p.hostPort) out.push(`hostPort (container "${c.name}" uses hostPort ${p.hostPort})`);
  }
  return out;
}

/** Server-side defaulting: a resource with a limit and no request is requested at the limit. */
export function defaultRequestsFromLimits(pod: Obj): void {
  for (const c of pod.spec?.containers ?? []) {
    const limits = (c.resources?.limits ?? {}) as Record<string, string>;
    if (!Object.keys(limits).length) continue;
    c.resources.requests = { ...limits, ...(c.resources.requests ?? {}) };
  }
}

/** A node's allocatable (what the scheduler can give pods), in cores, bytes and devices. */
export interface NodeAllocatable {
  cpu: string;
  memory: string;
  [resource: string]: string;
}

/** The scheduler's verdict for `nodes` identical nodes: undefined when the pod fits one, else the FailedScheduling message. */
export function insufficientResources(pod: Obj, node: NodeAllocatable, nodes: number): string | undefined {
  const want: Record<string, number> = {};
  for (const c of pod.spec?.containers ?? []) {
    for (const [name, q] of Object.entries((c.resources?.requests ?? {}) as Record<string, string>)) want[name] = (want[name] ?? 0) + quantityValue(q);
  }
  const short = Object.entries(want)
    .filter(([name, amount]) => amount > 0 && amount > (node[name] !== undefined ? quantityValue(node[name]) : 0))
    .map(([name]) => name)
    .sort();
  if (!short.length) return undefined;
  return `0/${nodes} nodes are available: ${short.map((n) => `${nodes} Insufficient ${n}`).join(', ')}. preemption: 0/${nodes} nodes are available: ${nodes} No preemption victims found for incoming pod.`;
}
