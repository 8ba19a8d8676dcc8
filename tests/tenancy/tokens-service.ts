/**
 * A real spawngate for the token and edge probes: Postgres (its own database), the local backend with
 * real ipykernel, users alice and bob with a conda kernelspec each, hub and admin tokens, and a helper
 * that attempts a websocket upgrade and reports the HTTP answer.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import WebSocket from 'ws';
import { loadConfig } from '../../src/config';
import { createService, type Service } from '../../src/compose';
import { captureLogger, createTestPostgres, type TestPostgres } from '../db/helpers';

export const HUB = 'hub-token-for-tenancy-0123456789';
export const ADMIN = 'admin-token-for-tenancy-0123456789';

export interface EdgeService {
  service: Service;
  port: number;
  homes: string;
  root: string;
  records: Record<string, unknown>[];
  sql(text: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

export function condaKernel(homes: string, user: string, env: string): string {
  const dir = path.join(homes, user, '.conda', 'envs', env, 'share', 'jupyter', 'kernels', 'python3');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'kernel.json'),
    JSON.stringify({ argv: ['/usr/bin/python3', '-m', 'ipykernel_launcher', '-f', '{connection_file}'], display_name: `Python (${env})`, language: 'python' }),
  );
  return dir;
}

export async function startEdgeService(prefix: string): Promise<EdgeService> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `sg-${prefix}-`));
  const homes = path.join(root, 'homes');
  condaKernel(homes, 'alice', 'tf');
  condaKernel(homes, 'bob', 'tf');
  const pg: TestPostgres = await createTestPostgres();
  const { logger, records } = captureLogger();
  const service = await createService(
    loadConfig({
      SPAWNGATE_DATA_DIR: path.join(root, 'data'),
      SPAWNGATE_DATABASE_URL: pg.url,
      SPAWNGATE_HUB_TOKEN: HUB,
      SPAWNGATE_ADMIN_TOKEN: ADMIN,
      SPAWNGATE_HOME_ROOT: homes,
      SPAWNGATE_PORT: '0',
      // The homes here are made by root (the test); tokens, not workload identity, are under test.
      SPAWNGATE_LOCAL_ALLOW_ROOT: '1',
    }),
    { logger },
  );
  const port = await service.listen();
  await service.db.query(`
    INSERT INTO users (username) VALUES ('alice'), ('bob');
    INSERT INTO experiments (name, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib) VALUES ('genomics', 0.5, 2, 512, 4096);
    INSERT INTO environments (name, experiment_id) SELECT 'tf', id FROM experiments WHERE name = 'genomics';
    INSERT INTO experiment_members (experiment_id, user_id) SELECT e.id, u.id FROM experiments e, users u WHERE e.name = 'genomics';
  `);
  return {
    service,
    port,
    homes,
    root,
    records,
    sql: (text, params) => service.db.query(text, params),
    async close() {
      for (const k of await service.kernels.list(undefined)) await service.kernels.shutdown(undefined, k.id).catch(() => undefined);
      await service.close();
      await pg.drop();
    },
  };
}

export const as = (token: string): Record<string, string> => ({ Authorization: `token ${token}` });

/** Tries `WS /api/kernels/<id>/channels`: 101 with the open socket, or the refusal's status and JSON body. */
export function upgrade(port: number, kernelId: string, headers: Record<string, string>): Promise<{ status: number; body?: { message?: string }; ws?: WebSocket }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/api/kernels/${kernelId}/channels`, { headers });
    ws.once('open', () => resolve({ status: 101, ws }));
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as { message?: string }) : undefined }));
    });
    ws.once('error', (err) => reject(err));
  });
}
