/**
 * One in-process spawngate for tenancy tests: a fresh Postgres database, homes under a temporary home
 * root (traversable, as /home is), a YAML configuration, the local backend and the in-process queue.
 * Kernelspecs are written per user; `launch` posts to /api/kernels with that user's gateway token.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import request from 'supertest';
import { loadConfig } from '../../src/config';
import { mintToken } from '../../src/db';
import { createService, type Service } from '../../src/compose';
import { createTestPostgres, type TestPostgres } from '../db/helpers';

export const PYTHON = '/usr/bin/python3';
export const IPYKERNEL = [PYTHON, '-m', 'ipykernel_launcher', '-f', '{connection_file}'];

export interface TenantService {
  root: string;
  homes: string;
  service: Service;
  port: number;
  pg: TestPostgres;
  tokens: Record<string, string>;
  /** Writes `<homes>/<user>/.local/share/jupyter/kernels/<name>/kernel.json` (the home may already exist). */
  kernelspec(user: string, name: string, argv: string[]): void;
  launch(user: string, name: string, env?: Record<string, string>): request.Test;
  close(): Promise<void>;
}

export interface TenantServiceOptions {
  users: string[];
  /** Extra lines of the YAML `kernels:` block (indented two spaces). */
  kernels?: string;
  /** Extra YAML after the `kernels:` block (top level: `servers:`, more `profiles` are not possible). */
  extra?: string;
  /** Extra profiles (list items indented two spaces, starting with `  - slug:`). */
  profiles?: string;
  env?: Record<string, string>;
  homes?: string;
}

export async function startTenantService(opts: TenantServiceOptions): Promise<TenantService> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-ten-'));
  fs.chmodSync(root, 0o755);
  const homes = opts.homes ?? path.join(root, 'homes');
  fs.mkdirSync(homes, { recursive: true, mode: 0o755 });
  const configFile = path.join(root, 'config.yaml');
  fs.writeFileSync(
    configFile,
    `profiles:\n  - slug: small\n    display_name: Small\n${opts.profiles ?? ''}kernels:\n  unregistered_environments: { profile: small }\n${opts.kernels ?? ''}${opts.extra ?? ''}`,
  );
  const pg = await createTestPostgres();
  const service = await createService(
    loadConfig({
      SPAWNGATE_DATA_DIR: path.join(root, 'data'),
      SPAWNGATE_HOME_ROOT: homes,
      SPAWNGATE_CONFIG: configFile,
      SPAWNGATE_DATABASE_URL: pg.url,
      SPAWNGATE_PORT: '0',
      SPAWNGATE_LOG_LEVEL: 'warn',
      // Homes a test writes as root stay root's; homes of real users (useradd) still run as their owner.
      SPAWNGATE_LOCAL_ALLOW_ROOT: '1',
      ...opts.env,
    }),
  );
  const port = await service.listen();
  const tokens: Record<string, string> = {};
  for (const u of opts.users) {
    await service.db.query('INSERT INTO users (username) VALUES ($1) ON CONFLICT DO NOTHING', [u]);
    tokens[u] = await mintToken(service.db, { username: u, kind: 'cli' });
  }
  return {
    root,
    homes,
    service,
    port,
    pg,
    tokens,
    kernelspec(user, name, argv) {
      const dir = path.join(homes, user, '.local', 'share', 'jupyter', 'kernels', name);
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'kernel.json'), JSON.stringify({ argv, display_name: name, language: 'python' }));
    },
    launch(user, name, env = {}) {
      return request(service.app!).post('/api/kernels').set({ Authorization: `token ${tokens[user]}` }).send({ name, env });
    },
    async close() {
      for (const k of await service.kernels.list(undefined)) await service.kernels.shutdown(undefined, k.id).catch(() => undefined);
      await service.close({ stopWorkloads: true });
      await pg.drop();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}
