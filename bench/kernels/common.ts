/**
 * Shared set-up for the kernel benchmarks (issue 4, benchmarks 1 and 3): an in-process spawngate
 * (embedded PGlite, local backend) over a fixture home where every user has a conda env `tf` whose
 * kernelspec runs Debian's ipykernel, with the quota set up by plain SQL — as in
 * tests/gateway/kernels.test.ts — and a Jupyter websocket helper timing the first output of a cell.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import winston from 'winston';
import type WebSocket from 'ws';
import { executeRequest } from '../../tests/support/jupyter-ws';
import { loadConfig } from '../../src/config';
import { mintToken } from '../../src/db';
import { createService, type Service } from '../../src/compose';

export const SYSTEM_PYTHON = '/usr/bin/python3';
export const KERNEL_NAME = 'conda-env-tf-python3';
export const HUB_TOKEN = 'bench-hub-token-0123456789abcdef';

export interface Spawngate {
  service: Service;
  port: number;
  base: string;
  /** user name → API token (kind 'cli'). */
  tokens: Map<string, string>;
  root: string;
  close(): Promise<void>;
}

/** Starts the in-process service with `users` members of experiment `genomics` (environment `tf`). */
export async function startSpawngate(opts: {
  users: string[];
  yaml?: string;
  env?: Record<string, string>;
  logLevel?: string;
}): Promise<Spawngate> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-bench-kernels-'));
  const homes = path.join(root, 'homes');
  for (const user of opts.users) {
    const dir = path.join(homes, user, '.conda', 'envs', 'tf', 'share', 'jupyter', 'kernels', 'python3');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(
      path.join(dir, 'kernel.json'),
      JSON.stringify({
        argv: [SYSTEM_PYTHON, '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
        display_name: 'Python (tf)',
        language: 'python',
      }),
    );
  }
  const env: Record<string, string> = {
    SPAWNGATE_DATA_DIR: path.join(root, 'data'),
    SPAWNGATE_HUB_TOKEN: HUB_TOKEN,
    SPAWNGATE_HOME_ROOT: homes,
    SPAWNGATE_PORT: '0',
    ...opts.env,
  };
  if (opts.yaml !== undefined) {
    fs.writeFileSync(path.join(root, 'spawngate.yaml'), opts.yaml);
    env.SPAWNGATE_CONFIG = path.join(root, 'spawngate.yaml');
  }
  const logger = winston.createLogger({
    level: opts.logLevel ?? process.env.BENCH_LOG_LEVEL ?? 'error',
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    transports: [new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'] })],
  });
  const service = await createService(loadConfig(env), { logger });
  const port = await service.listen();
  const values = opts.users.map((u) => `('${u}')`).join(', ');
  await service.db.query(`
    INSERT INTO users (username) VALUES ${values};
    INSERT INTO experiments (name, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib) VALUES ('genomics', 0.5, 2, 512, 4096);
    INSERT INTO environments (name, experiment_id) SELECT 'tf', id FROM experiments WHERE name = 'genomics';
    INSERT INTO experiment_members (experiment_id, user_id) SELECT e.id, u.id FROM experiments e, users u WHERE e.name = 'genomics';
  `);
  const tokens = new Map<string, string>();
  for (const user of opts.users)
    tokens.set(user, await mintToken(service.db, { username: user, kind: 'cli' }));
  return {
    service,
    port,
    base: `http://127.0.0.1:${port}`,
    tokens,
    root,
    async close() {
      for (const k of await service.kernels.list(undefined))
        await service.kernels.shutdown(undefined, k.id).catch(() => undefined);
      await service.close({ stopWorkloads: true });
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

/**
 * Sends `execute_request(code)` and resolves with the text of the first `stream` message of that
 * request (the first output of the cell).
 */
export function firstOutput(ws: WebSocket, code: string, timeoutMs = 60_000): Promise<string> {
  const msgId = randomUUID();
  const session = randomUUID();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      ws.off('message', onMessage);
      reject(new Error(`no output of ${JSON.stringify(code)} within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (data: WebSocket.RawData): void => {
      const m = JSON.parse(data.toString()) as {
        header: { msg_type: string };
        parent_header?: { msg_id?: string };
        content: { text?: string; ename?: string };
      };
      if (m.parent_header?.msg_id !== msgId) return;
      if (m.header.msg_type === 'error') {
        clearTimeout(timer);
        ws.off('message', onMessage);
        reject(new Error(`${code} raised ${m.content.ename}`));
      }
      if (m.header.msg_type !== 'stream') return;
      clearTimeout(timer);
      ws.off('message', onMessage);
      resolve(String(m.content.text));
    };
    ws.on('message', onMessage);
    ws.send(executeRequest(code, { msgId, session, username: 'bench' }));
  });
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
