/** Builders for kernelspec trees, a recording logger, and a tiny gateway app around the kernelspec router. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import express, { type NextFunction, type Request, type Response } from 'express';
import {
  KernelspecCatalog,
  KernelspecIndex,
  type KernelspecIndexOptions,
  type KernelspecPolicy,
  type KernelFs,
} from '../../src/kernels';
import { createKernelspecRouter, errorBody, HttpError, toHttpAnswer, type Identity } from '../../src/spawner-api';

/** A 1×1 PNG. */
export const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
  'base64',
);
export const SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>';

const trees: string[] = [];

/** A fresh world-readable directory under the OS temp dir, removed by `removeTrees`. */
export function tmpTree(prefix = 'sg-kernels'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
  fs.chmodSync(dir, 0o755);
  trees.push(dir);
  return fs.realpathSync(dir);
}

/** Removes every tree made by `tmpTree` in this test file (call from `afterAll`). */
export function removeTrees(): void {
  for (const dir of trees.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
}

export function kernelJson(
  displayName: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    argv: ['python', '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
    display_name: displayName,
    language: 'python',
    ...extra,
  };
}

export interface KernelFiles {
  /** kernel.json content: object (serialized), string or raw bytes. */
  json: Record<string, unknown> | string | Buffer;
  logos?: boolean;
  js?: boolean;
}

/** Writes `<kernelsDir>/<name>/kernel.json` (+ logos) and returns the kernel directory. */
export function writeKernel(kernelsDir: string, name: string, files: KernelFiles): string {
  const dir = path.join(kernelsDir, name);
  fs.mkdirSync(dir, { recursive: true });
  const { json } = files;
  fs.writeFileSync(
    path.join(dir, 'kernel.json'),
    typeof json === 'string' || Buffer.isBuffer(json) ? json : JSON.stringify(json),
  );
  if (files.logos) {
    fs.writeFileSync(path.join(dir, 'logo-32x32.png'), PNG);
    fs.writeFileSync(path.join(dir, 'logo-64x64.png'), PNG);
    fs.writeFileSync(path.join(dir, 'logo-svg.svg'), SVG);
  }
  if (files.js) {
    fs.writeFileSync(path.join(dir, 'kernel.js'), 'define([], function () { return {}; });\n');
    fs.writeFileSync(path.join(dir, 'kernel.css'), '.x { color: red; }\n');
  }
  return dir;
}

export const condaKernelsDir = (root: string, user: string, env: string): string =>
  path.join(root, user, '.conda', 'envs', env, 'share', 'jupyter', 'kernels');
export const localKernelsDir = (root: string, user: string): string =>
  path.join(root, user, '.local', 'share', 'jupyter', 'kernels');

/** A conda env with one `python3` kernel (display name `<env> (<user>)`). */
export function condaEnv(
  root: string,
  user: string,
  env: string,
  kernel = 'python3',
  extra: Record<string, unknown> = {},
  logos = true,
): string {
  return writeKernel(condaKernelsDir(root, user, env), kernel, {
    json: kernelJson(`${env} (${user})`, extra),
    logos,
  });
}

export interface LogRecord {
  level: 'warn' | 'debug';
  message: string;
  meta?: Record<string, unknown>;
}

export function recordingLogger(): {
  records: LogRecord[];
  warn: (m: string, meta?: Record<string, unknown>) => void;
  debug: (m: string, meta?: Record<string, unknown>) => void;
} {
  const records: LogRecord[] = [];
  return {
    records,
    warn: (message, meta) => void records.push({ level: 'warn', message, meta }),
    debug: (message, meta) => void records.push({ level: 'debug', message, meta }),
  };
}

export function makeCatalog(
  opts: Partial<KernelspecIndexOptions> & { homeRoot: string; policy?: KernelspecPolicy; fs?: KernelFs },
): KernelspecCatalog {
  const { policy, ...indexOpts } = opts;
  return new KernelspecCatalog({ index: new KernelspecIndex(indexOpts), policy, fs: opts.fs });
}

export const names = async (catalog: KernelspecCatalog, user: string | undefined): Promise<string[]> =>
  (await catalog.list(user)).kernelspecs.map((k) => k.name);

/**
 * A minimal gateway: `Authorization: token <t>` looked up in `tokens` (unknown token 401, none: no
 * identity), the kernelspec router, a JSON 404 and the app's error mapper answering `{"reason","message"}`.
 * Stands in for the real app (src/spawner-api/app.ts) until the real-client test is switched to it.
 */
export function gatewayApp(catalog: KernelspecCatalog, tokens: Record<string, Identity>): express.Express {
  const app = express();
  app.set('etag', false);
  app.use(function fakeIdentity(req: Request, res: Response, next: NextFunction) {
    const m = /^token\s+(\S+)$/i.exec(req.get('authorization') ?? '');
    if (m) {
      const identity = tokens[m[1] as string];
      if (!identity) throw new HttpError(401, 'invalid token');
      res.locals.identity = identity;
    }
    next();
  });
  app.get('/api', (_req, res) => void res.json({ version: '3.2.3' }));
  app.get('/api/kernels', (_req, res) => void res.json([]));
  app.use(createKernelspecRouter({ catalog }));
  app.use((req: Request, _res: Response, next: NextFunction) =>
    next(new HttpError(404, `no route for ${req.method} ${req.path}`)),
  );
  app.use(function errorHandler(err: unknown, _req: Request, res: Response, _next: NextFunction) {
    // The real mapper (src/spawner-api/error-mapper.ts), so status codes and messages are the app's.
    const answer = toHttpAnswer(err);
    if (answer.status >= 500) console.error(err);
    res.status(answer.status).json(errorBody(answer));
  });
  return app;
}
