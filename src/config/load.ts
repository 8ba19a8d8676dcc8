/** Reads, validates and freezes the configuration; errors name the variable or file key at fault. */
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { envSchema, fileConfigSchema, type EnvConfig, type FileConfig } from './schema';
import { readSecretFiles, SecretFileError } from './secret-files';

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export interface Config {
  env: EnvConfig;
  file: FileConfig;
  /** Absolute data directory. */
  dataDir: string;
  sharedKernelDirs: string[];
  publicUrl: string;
}

function describeIssues(error: z.ZodError, prefix: string): string {
  return error.issues
    .map((i) => `${prefix}${i.path.join('.') || '(root)'}: ${i.message}`)
    .join('; ');
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const picked: Record<string, string> = {};
  for (const key of Object.keys(envSchema.shape)) {
    const v = env[key];
    if (v !== undefined && v !== '') picked[key] = v;
  }
  try {
    Object.assign(picked, readSecretFiles(env));
  } catch (err) {
    if (err instanceof SecretFileError) throw new ConfigError(`invalid configuration: ${err.message}`);
    throw err;
  }
  const parsed = envSchema.safeParse(picked);
  if (!parsed.success) throw new ConfigError(`invalid configuration: ${describeIssues(parsed.error, '')}`);
  const e = parsed.data;

  let file: FileConfig = fileConfigSchema.parse({});
  if (e.SPAWNGATE_CONFIG) {
    let text: string;
    try {
      text = fs.readFileSync(e.SPAWNGATE_CONFIG, 'utf8');
    } catch (err) {
      throw new ConfigError(`SPAWNGATE_CONFIG: cannot read ${e.SPAWNGATE_CONFIG}: ${(err as Error).message}`);
    }
    let raw: unknown;
    try {
      raw = YAML.parse(text) ?? {};
    } catch (err) {
      throw new ConfigError(`SPAWNGATE_CONFIG: ${e.SPAWNGATE_CONFIG} is not valid YAML: ${(err as Error).message}`);
    }
    const f = fileConfigSchema.safeParse(raw);
    if (!f.success) throw new ConfigError(`SPAWNGATE_CONFIG (${e.SPAWNGATE_CONFIG}): ${describeIssues(f.error, '')}`);
    file = f.data;
    const slugs = new Set<string>();
    for (const p of file.profiles) {
      if (slugs.has(p.slug)) throw new ConfigError(`SPAWNGATE_CONFIG: profiles: duplicate slug '${p.slug}'`);
      slugs.add(p.slug);
    }
  }
  const host = e.SPAWNGATE_BIND === '0.0.0.0' || e.SPAWNGATE_BIND === '::' ? '127.0.0.1' : e.SPAWNGATE_BIND;
  return Object.freeze({
    env: e,
    file,
    dataDir: path.resolve(e.SPAWNGATE_DATA_DIR),
    sharedKernelDirs: e.SPAWNGATE_SHARED_KERNELS.split(':').filter((d) => d.length > 0),
    publicUrl: (e.SPAWNGATE_PUBLIC_URL ?? `http://${host}:${e.SPAWNGATE_PORT}`).replace(/\/+$/, ''),
  });
}
