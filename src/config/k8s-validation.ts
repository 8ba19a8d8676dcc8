/**
 * What a Kubernetes API server refuses, as spawngate checks it before anything is sent: the name and
 * value rules of apimachinery's validation (DNS-1123 names, qualified names, label values, IANA service
 * names, environment variable names by cluster version, Secret key names), the pod-spec rules spawngate
 * can break through a profile (tolerations, extended resources, annotation size, volumes under Pod
 * Security "restricted", sub-paths) and spawngate's own "never root" rule for groups.
 *
 * Pure functions, no I/O. Used when the configuration loads (profiles' `kubernetes:` blocks and env,
 * kernels settings), when a launch is requested (a kernel.json's env) and by the manifest builder, so
 * each rule lives here once. Each check returns problems as `<field>: <rule>` strings; an empty list
 * means the API server would accept the value.
 */

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUALIFIED_NAME_PART = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const C_ENV_NAME = /^[-._a-zA-Z][-._a-zA-Z0-9]*$/;
const CONFIG_KEY = /^[-._a-zA-Z0-9]+$/;

/** Kubernetes' limit on the sum of annotation key and value lengths of one object (256 KiB). */
export const MAX_ANNOTATIONS_BYTES = 256 * 1024;
/** Kubernetes' limit on the total size of a Secret's data (1 MiB). */
export const MAX_SECRET_BYTES = 1024 * 1024;
/** The first Kubernetes minor version (1.x) whose API server accepts relaxed environment variable names. */
export const RELAXED_ENV_NAMES_SINCE_MINOR = 32;

export function isDns1123Label(v: string): boolean {
  return v.length <= 63 && DNS1123_LABEL.test(v);
}

export function isDns1123Subdomain(v: string): boolean {
  return v.length <= 253 && DNS1123_SUBDOMAIN.test(v);
}

/** A label key, annotation key, nodeSelector key or toleration key: `[prefix/]name`. */
export function qualifiedNameProblem(v: string): string | undefined {
  const parts = v.split('/');
  if (parts.length > 2) return 'a qualified name has at most one "/" ([DNS-subdomain prefix/]name)';
  const name = parts[parts.length - 1]!;
  if (parts.length === 2) {
    const prefix = parts[0]!;
    if (!prefix) return 'the prefix before "/" must not be empty';
    if (!isDns1123Subdomain(prefix)) return `prefix ${JSON.stringify(prefix)} must be a DNS-1123 subdomain (lower-case a-z, 0-9, "-", ".", at most 253)`;
  }
  if (!name) return 'the name part must not be empty';
  if (name.length > 63) return 'the name part must be at most 63 characters';
  if (!QUALIFIED_NAME_PART.test(name)) return 'the name part must consist of A-Z, a-z, 0-9, "-", "_", "." and start and end with a letter or digit';
  return undefined;
}

export function labelValueProblem(v: string): string | undefined {
  if (v.length > 63) return 'a label value must be at most 63 characters';
  if (!LABEL_VALUE.test(v)) return 'a label value must be empty or consist of A-Z, a-z, 0-9, "-", "_", "." and start and end with a letter or digit';
  return undefined;
}

/** A container port name (IANA_SVC_NAME): 1–15 of a-z, 0-9, "-", at least one letter, no "--", no "-" at either end. */
export function isIanaSvcName(v: string): boolean {
  return v.length >= 1 && v.length <= 15 && /^[-a-z0-9]+$/.test(v) && /[a-z]/.test(v) && !v.includes('--') && !v.startsWith('-') && !v.endsWith('-');
}

function chdirPrefixProblem(v: string): string | undefined {
  if (v === '.' || v === '..') return `must not be '${v}'`;
  if (v.startsWith('..')) return "must not start with '..'";
  return undefined;
}

/** A key of a Secret's (or ConfigMap's) data, which is also a file name when mounted. */
export function secretKeyProblem(v: string): string | undefined {
  if (v.length > 253) return 'a Secret key must be at most 253 characters';
  if (!CONFIG_KEY.test(v)) return 'a Secret key must consist of A-Z, a-z, 0-9, "-", "_", "."';
  return chdirPrefixProblem(v);
}

/**
 * Which environment variable names the cluster accepts: `c-identifier` is `IsEnvVarName`
 * (`[-._a-zA-Z][-._a-zA-Z0-9]*`, not `.`/`..`/`..*`), every version; `relaxed` is
 * `IsRelaxedEnvVarName` (printable ASCII except `=`), the default from Kubernetes 1.32.
 */
export type EnvNameRule = 'c-identifier' | 'relaxed';

/** The rule of a cluster reporting `major`.`minor` on `/version` (minor may carry a `+`, as on EKS: "32+"). */
export function envNameRuleFor(major: string, minor: string): EnvNameRule {
  const maj = Number.parseInt(major, 10);
  const min = Number.parseInt(minor, 10);
  if (!Number.isFinite(maj) || !Number.isFinite(min)) return 'c-identifier';
  return maj > 1 || (maj === 1 && min >= RELAXED_ENV_NAMES_SINCE_MINOR) ? 'relaxed' : 'c-identifier';
}

export function envNameProblem(name: string, rule: EnvNameRule): string | undefined {
  if (!name) return 'an environment variable name must not be empty';
  if (rule === 'relaxed') {
    return /^[\x20-\x3c\x3e-\x7e]+$/.test(name) ? undefined : 'an environment variable name must consist of printable ASCII characters other than "=" (Kubernetes ≥ 1.32)';
  }
  if (!C_ENV_NAME.test(name)) {
    return 'an environment variable name must consist of letters, digits, "_", "-", "." and not start with a digit (Kubernetes before 1.32)';
  }
  const p = chdirPrefixProblem(name);
  return p ? `an environment variable name ${p}` : undefined;
}

/** Problems of every name in `env`, as `<field>.<name>: <rule>`. */
export function envProblems(field: string, env: Record<string, string>, rule: EnvNameRule): string[] {
  const out: string[] = [];
  for (const name of Object.keys(env)) {
    const p = envNameProblem(name, rule);
    if (p) out.push(`${field}.${JSON.stringify(name)}: ${p}`);
  }
  return out;
}

/** Label keys and values (a map under `field`). */
export function labelsProblems(field: string, labels: Record<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(labels)) {
    const kp = qualifiedNameProblem(k);
    if (kp) out.push(`${field} key ${JSON.stringify(k)}: ${kp}`);
    const vp = labelValueProblem(v);
    if (vp) out.push(`${field}.${k} value ${JSON.stringify(v)}: ${vp}`);
  }
  return out;
}

/** Annotation keys (qualified names, checked lower-cased as the API server does) and their total size. */
export function annotationsProblems(field: string, annotations: Record<string, string>): string[] {
  const out: string[] = [];
  let total = 0;
  for (const [k, v] of Object.entries(annotations)) {
    const kp = qualifiedNameProblem(k.toLowerCase());
    if (kp) out.push(`${field} key ${JSON.stringify(k)}: ${kp}`);
    total += k.length + v.length;
  }
  if (total > MAX_ANNOTATIONS_BYTES) out.push(`${field}: total size ${total} bytes exceeds ${MAX_ANNOTATIONS_BYTES} (256 KiB)`);
  return out;
}

const TOLERATION_OPERATORS = ['Equal', 'Exists'];
const TAINT_EFFECTS = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'];

export function tolerationProblems(field: string, t: unknown): string[] {
  if (t === null || typeof t !== 'object' || Array.isArray(t)) return [`${field}: a toleration is an object {key, operator, value, effect, tolerationSeconds}`];
  const o = t as Record<string, unknown>;
  const out: string[] = [];
  const unknown = Object.keys(o).filter((k) => !['key', 'operator', 'value', 'effect', 'tolerationSeconds'].includes(k));
  if (unknown.length) out.push(`${field}: unknown field(s) ${unknown.join(', ')}`);
  for (const k of ['key', 'operator', 'value', 'effect'] as const) {
    if (o[k] !== undefined && typeof o[k] !== 'string') out.push(`${field}.${k}: must be a string`);
  }
  if (out.length) return out;
  const key = (o.key as string | undefined) ?? '';
  const operator = (o.operator as string | undefined) ?? '';
  const value = (o.value as string | undefined) ?? '';
  const effect = (o.effect as string | undefined) ?? '';
  if (key) {
    const kp = qualifiedNameProblem(key);
    if (kp) out.push(`${field}.key: ${kp}`);
  } else if (operator !== 'Exists') {
    out.push(`${field}.operator: must be Exists when key is empty`);
  }
  if (operator && !TOLERATION_OPERATORS.includes(operator)) out.push(`${field}.operator: must be one of Equal, Exists`);
  if (operator === 'Exists' && value) out.push(`${field}.value: must be empty when operator is Exists`);
  if (operator !== 'Exists' && value) {
    const vp = labelValueProblem(value);
    if (vp) out.push(`${field}.value: ${vp}`);
  }
  if (effect && !TAINT_EFFECTS.includes(effect)) out.push(`${field}.effect: must be one of ${TAINT_EFFECTS.join(', ')}`);
  if (o.tolerationSeconds !== undefined) {
    if (typeof o.tolerationSeconds !== 'number' || !Number.isInteger(o.tolerationSeconds)) out.push(`${field}.tolerationSeconds: must be an integer`);
    else if (effect !== 'NoExecute') out.push(`${field}.tolerationSeconds: only with effect NoExecute`);
  }
  return out;
}

const NATIVE_RESOURCES = new Set(['cpu', 'memory', 'ephemeral-storage', 'storage']);

function isNativeResource(name: string): boolean {
  return NATIVE_RESOURCES.has(name) || name.startsWith('hugepages-') || !name.includes('/') || name.split('/')[0]!.endsWith('kubernetes.io');
}

const QUANTITY = /^[+-]?(\d+(\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?\d+)?$/;
const DECIMAL_EXP: Record<string, number> = { m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const BINARY_EXP: Record<string, number> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };

/** Whether a Kubernetes quantity (`2`, `1.5k`, `2000m`, `1Ki`, `3e2`) is a whole number: extended resources must be. */
export function isIntegerQuantity(q: string): boolean {
  const m = /^\+?(\d*)(?:\.(\d*))?(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?\d+)?$/.exec(q);
  if (!m || !QUANTITY.test(q)) return false;
  const frac = (m[2] ?? '').replace(/0+$/, '');
  const n = BigInt((m[1] || '0') + frac); // value = n × 10^-frac.length × suffix
  const suffix = m[3] ?? '';
  if (suffix in BINARY_EXP) {
    const scaled = n * 2n ** BigInt(BINARY_EXP[suffix]!);
    return scaled % 10n ** BigInt(frac.length) === 0n;
  }
  const exp = (suffix in DECIMAL_EXP ? DECIMAL_EXP[suffix]! : Number(suffix.slice(1))) - frac.length;
  return exp >= 0 || n % 10n ** BigInt(-exp) === 0n;
}

/**
 * Extra resources a profile adds (GPUs and other devices): names are qualified, quantities valid;
 * extended resources (outside kubernetes.io) are whole numbers. Their request is set equal to the
 * limit by the manifest builder, which the API server requires.
 */
export function extraResourcesProblems(field: string, limits: Record<string, string>): string[] {
  const out: string[] = [];
  for (const [name, q] of Object.entries(limits)) {
    const np = qualifiedNameProblem(name);
    if (np) out.push(`${field} key ${JSON.stringify(name)}: ${np}`);
    if (!QUANTITY.test(q) || q.startsWith('-')) {
      out.push(`${field}.${name}: ${JSON.stringify(q)} is not a non-negative Kubernetes quantity`);
      continue;
    }
    if (name === 'cpu' || name === 'memory') out.push(`${field}.${name}: set CPU and memory in the profile's resources, not here`);
    else if (!name.includes('/') && !NATIVE_RESOURCES.has(name) && !name.startsWith('hugepages-')) {
      out.push(`${field}.${name}: a resource name must be a standard one (ephemeral-storage, hugepages-…) or fully qualified (e.g. nvidia.com/gpu)`);
    }
    else if (!isNativeResource(name) && !isIntegerQuantity(q)) out.push(`${field}.${name}: an extended resource must be a whole number, got ${JSON.stringify(q)}`);
  }
  return out;
}

/** Volume sources Pod Security "restricted" allows (hostPath and the other node-bound kinds are refused). */
export const RESTRICTED_VOLUME_SOURCES = ['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret'];

export function volumeProblems(field: string, v: unknown): string[] {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return [`${field}: a volume is an object {name, <source>}`];
  const o = v as Record<string, unknown>;
  const out: string[] = [];
  if (typeof o.name !== 'string' || !isDns1123Label(o.name)) out.push(`${field}.name: a volume name must be a DNS-1123 label (a-z, 0-9, "-", at most 63)`);
  const sources = Object.keys(o).filter((k) => k !== 'name');
  if (sources.length !== 1) out.push(`${field}: exactly one volume source, got ${sources.length ? sources.join(', ') : 'none'}`);
  for (const s of sources) {
    if (!RESTRICTED_VOLUME_SOURCES.includes(s)) out.push(`${field}.${s}: volume kind refused under Pod Security "restricted" (allowed: ${RESTRICTED_VOLUME_SOURCES.join(', ')})`);
  }
  const secret = o.secret as Record<string, unknown> | undefined;
  if (secret && typeof secret === 'object') {
    if (typeof secret.secretName !== 'string' || !isDns1123Subdomain(secret.secretName)) out.push(`${field}.secret.secretName: a Secret name must be a DNS-1123 subdomain`);
    if (Array.isArray(secret.items)) {
      secret.items.forEach((it: unknown, i) => {
        const key = (it as { key?: unknown } | null)?.key;
        const kp = typeof key === 'string' ? secretKeyProblem(key) : 'must be a string';
        if (kp) out.push(`${field}.secret.items[${i}].key: ${kp}`);
      });
    }
  }
  return out;
}

/** A sub-path inside a volume: relative, without a `..` element. */
export function subPathProblem(p: string): string | undefined {
  if (p.startsWith('/')) return 'must be a relative path';
  if (p.split('/').includes('..')) return "must not contain '..'";
  return undefined;
}

export function volumeMountProblems(field: string, m: unknown, volumeNames: ReadonlySet<string>): string[] {
  if (m === null || typeof m !== 'object' || Array.isArray(m)) return [`${field}: a volume mount is an object {name, mountPath}`];
  const o = m as Record<string, unknown>;
  const out: string[] = [];
  if (typeof o.name !== 'string' || !volumeNames.has(o.name)) out.push(`${field}.name: must name one of the profile's volumes`);
  if (typeof o.mountPath !== 'string' || !o.mountPath.startsWith('/')) out.push(`${field}.mountPath: must be an absolute path`);
  if (o.subPath !== undefined) {
    const sp = typeof o.subPath === 'string' ? subPathProblem(o.subPath) : 'must be a string';
    if (sp) out.push(`${field}.subPath: ${sp}`);
  }
  return out;
}
