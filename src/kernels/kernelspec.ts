/**
 * The kernelspec model: validating a `kernel.json` (jupyter_client's `KernelSpec` fields), deriving
 * its environment and its EG authorization lists, and listing its resources the way jupyter_server's
 * `kernelspec_model` does (`kernel.js`, `kernel.css`, every `logo-*` file keyed by its stem).
 */
import { z } from 'zod';

/** What `/api/kernelspecs` returns as `spec` — jupyter_client's `KernelSpec.to_dict()`. */
export interface KernelspecFile {
  argv: string[];
  display_name: string;
  language: string;
  env: Record<string, string>;
  metadata: Record<string, unknown>;
  interrupt_mode: 'signal' | 'message';
}

export type KernelspecSource = 'shared' | 'conda' | 'user';

/** One kernelspec found on disk, as the index keeps it. Immutable once built. */
export interface DiscoveredKernelspec {
  /** Exposed name (`python3`, `conda-env-tf-python3`). */
  readonly name: string;
  readonly source: KernelspecSource;
  readonly spec: KernelspecFile;
  /**
   * The environment the kernel runs in (the key of the quota lookup): `metadata.spawngate.environment`,
   * else `env.KERNEL_ENV_EXP`, else — for conda kernelspecs only — the env directory name; else null.
   */
  readonly environment: string | null;
  /** Real path of the kernel directory (its resource dir). */
  readonly dir: string;
  /** Files read for this kernelspec must resolve inside this directory (the home, or the shared kernel dir). */
  readonly root: string;
  /** Model resources: key (`logo-64x64`, `kernel.js`) → file name in `dir`. */
  readonly resources: Readonly<Record<string, string>>;
  /** EG `metadata.process_proxy.config` lists; `authorized` null or empty means unrestricted. */
  readonly access: {
    readonly authorized: ReadonlySet<string> | null;
    readonly unauthorized: ReadonlySet<string>;
  };
}

const userList = z.union([z.string(), z.array(z.string())]);

const kernelJsonSchema = z.object({
  argv: z.array(z.string()).min(1, 'argv must be a non-empty array of strings'),
  display_name: z.string().min(1, 'display_name must be a non-empty string'),
  language: z.string().optional(),
  env: z.record(z.string(), z.string()).optional(),
  metadata: z
    .looseObject({
      spawngate: z.looseObject({ environment: z.string().min(1).max(255).optional() }).optional(),
      process_proxy: z
        .looseObject({
          config: z
            .looseObject({ authorized_users: userList.optional(), unauthorized_users: userList.optional(), image_name: z.string().min(1).max(512).optional() })
            .optional(),
        })
        .optional(),
    })
    .optional(),
  interrupt_mode: z.enum(['signal', 'message']).optional(),
});

/** A kernel.json that passed validation, before it is named and placed. */
export interface ParsedKernelJson {
  spec: KernelspecFile;
  /** `metadata.spawngate.environment` or `env.KERNEL_ENV_EXP`, if set. */
  explicitEnvironment: string | null;
  access: DiscoveredKernelspec['access'];
}

export class InvalidKernelJsonError extends Error {
  override readonly name = 'InvalidKernelJsonError';
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

const EMPTY_SET: ReadonlySet<string> = Object.freeze(new Set<string>());
const EMPTY_ENV: Readonly<Record<string, string>> = Object.freeze({});
const EMPTY_METADATA: Readonly<Record<string, unknown>> = Object.freeze({});

/**
 * Interning of the short strings that repeat across thousands of kernelspecs (`-m`,
 * `ipykernel_launcher`, `{connection_file}`, `python`, `logo-64x64.png`…): one copy in memory.
 * Bounded, so hostile input cannot grow it without limit.
 */
const interned = new Map<string, string>();
const MAX_INTERNED = 20_000;
export function intern(s: string): string {
  if (s.length > 64) return s;
  const found = interned.get(s);
  if (found !== undefined) return found;
  if (interned.size < MAX_INTERNED) interned.set(s, s);
  return s;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value as object)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

function toUserSet(value: string | string[] | undefined): ReadonlySet<string> | null {
  if (value === undefined) return null;
  const items = typeof value === 'string' ? value.split(',') : value;
  const set = new Set<string>();
  for (const item of items) {
    const t = item.trim();
    if (t.length > 0) set.add(t);
  }
  return set.size === 0 ? EMPTY_SET : set;
}

/**
 * Validates the bytes of a kernel.json: UTF-8 (a BOM is tolerated), JSON, an object with a non-empty
 * `argv` of strings (the first non-empty) and a non-empty `display_name`; optional `language`,
 * `env` (strings), `metadata` (object), `interrupt_mode`. Throws `InvalidKernelJsonError` saying why.
 */
export function parseKernelJson(data: Uint8Array): ParsedKernelJson {
  let text: string;
  try {
    text = utf8.decode(data);
  } catch {
    throw new InvalidKernelJsonError('not valid UTF-8');
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new InvalidKernelJsonError(`not valid JSON: ${(err as Error).message}`);
  }
  const parsed = kernelJsonSchema.safeParse(raw);
  if (!parsed.success) {
    const why = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new InvalidKernelJsonError(why);
  }
  const k = parsed.data;
  if ((k.argv[0] ?? '') === '') throw new InvalidKernelJsonError('argv[0] must be a non-empty string');
  const metadata =
    k.metadata && Object.keys(k.metadata).length > 0
      ? (k.metadata as Record<string, unknown>)
      : EMPTY_METADATA;
  const env = k.env && Object.keys(k.env).length > 0 ? k.env : EMPTY_ENV;
  const explicit = k.metadata?.spawngate?.environment ?? (env.KERNEL_ENV_EXP ? env.KERNEL_ENV_EXP : null);
  const config = k.metadata?.process_proxy?.config;
  return {
    // Frozen: the indexed spec is shared by every request; callers copy before changing anything.
    spec: deepFreeze({
      argv: k.argv.map(intern),
      display_name: k.display_name,
      language: intern(k.language ?? ''),
      env: env as Record<string, string>,
      metadata: metadata as Record<string, unknown>,
      interrupt_mode: k.interrupt_mode ?? 'signal',
    }),
    explicitEnvironment: explicit,
    access: Object.freeze({
      authorized: toUserSet(config?.authorized_users),
      unauthorized: toUserSet(config?.unauthorized_users) ?? EMPTY_SET,
    }),
  };
}

/**
 * The `resources` of a kernelspec from its directory's entry names, as jupyter_server builds them:
 * `kernel.js` and `kernel.css` under their own names, each `logo-*` file under its name without the
 * extension (`logo-64x64.png` → `logo-64x64`). Only names `isValidResourceName` accepts are offered.
 */
const resourceSets = new Map<string, Readonly<Record<string, string>>>();

export function resourcesFromEntries(
  entries: readonly string[],
  valid: (name: string) => boolean,
): Readonly<Record<string, string>> {
  const out: Array<[string, string]> = [];
  for (const name of [...entries].sort()) {
    if (!valid(name)) continue;
    if (name === 'kernel.js' || name === 'kernel.css') out.push([name, name]);
    else if (name.startsWith('logo-')) {
      const dot = name.lastIndexOf('.');
      out.push([dot > 0 ? name.slice(0, dot) : name, name]);
    }
  }
  // Most kernelspecs share one of a few resource sets: keep one frozen object per distinct set.
  const key = out.map(([k, f]) => `${k}=${f}`).join('/');
  let shared = resourceSets.get(key);
  if (shared === undefined) {
    shared = Object.freeze(Object.fromEntries(out.map(([k, f]) => [intern(k), intern(f)])));
    if (resourceSets.size < MAX_INTERNED) resourceSets.set(key, shared);
  }
  return shared;
}

const CONTENT_TYPES: Record<string, string> = {
  png: 'image/png',
  svg: 'image/svg+xml',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  ico: 'image/vnd.microsoft.icon',
  js: 'text/javascript; charset=utf-8',
  mjs: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  json: 'application/json',
  txt: 'text/plain; charset=utf-8',
  md: 'text/markdown; charset=utf-8',
  map: 'application/json',
  woff: 'font/woff',
  woff2: 'font/woff2',
};

/** Content type of a resource by extension; unknown types (HTML included) as `application/octet-stream`. */
export function contentTypeOf(file: string): string {
  const dot = file.lastIndexOf('.');
  const ext = dot >= 0 ? file.slice(dot + 1).toLowerCase() : '';
  return CONTENT_TYPES[ext] ?? 'application/octet-stream';
}
