/**
 * Unreadable directories and files (EACCES). Tests run as root, for whom chmod 000 changes nothing,
 * so this is tested twice: with an injected file-system layer that fails like a chmod-000 directory
 * does, and for real in a child process that drops to uid/gid 65534 (nobody) after loading the code.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { KernelspecCatalog, KernelspecIndex, nodeFs, type KernelFs } from '../../src/kernels';
import {
  condaEnv,
  condaKernelsDir,
  kernelJson,
  localKernelsDir,
  names,
  recordingLogger,
  removeTrees,
  tmpTree,
  writeKernel,
} from './helpers';

afterAll(removeTrees);

const ROOT = path.resolve(__dirname, '..', '..');

/** Behaves like chmod 000 on every directory in `locked`: it can be stat-ed, but not listed or entered. */
function lockedFs(locked: string[]): KernelFs {
  const eacces = (op: string, p: string): Error =>
    Object.assign(new Error(`EACCES: permission denied, ${op} '${p}'`), {
      code: 'EACCES',
      errno: -13,
      path: p,
    });
  const inside = (p: string): boolean => locked.some((d) => p.startsWith(`${d}/`));
  const listing = (p: string): boolean => locked.includes(p);
  return {
    stat: async (p) => (inside(p) ? Promise.reject(eacces('stat', p)) : nodeFs.stat(p)),
    realpath: async (p) => (inside(p) ? Promise.reject(eacces('realpath', p)) : nodeFs.realpath(p)),
    readdir: async (p) =>
      inside(p) || listing(p) ? Promise.reject(eacces('scandir', p)) : nodeFs.readdir(p),
    open: async (p, f) => (inside(p) || listing(p) ? Promise.reject(eacces('open', p)) : nodeFs.open(p, f)),
  };
}

function setup(): { homes: string } {
  const homes = tmpTree();
  condaEnv(homes, 'alice', 'tf');
  condaEnv(homes, 'alice', 'locked');
  condaEnv(homes, 'alice', 'secretjson');
  writeKernel(localKernelsDir(homes, 'alice'), 'mine', { json: kernelJson('mine') });
  condaEnv(homes, 'bob', 'bobenv');
  condaEnv(homes, 'carol', 'c1');
  return { homes };
}

test('injected EACCES: an unreadable env, kernel.json, ~/.local and home hide only themselves, logged once at warn', async () => {
  const { homes } = setup();
  const locked = [
    condaKernelsDir(homes, 'alice', 'locked'),
    path.join(condaKernelsDir(homes, 'alice', 'secretjson'), 'python3'),
    path.join(homes, 'bob'),
  ];
  const log = recordingLogger();
  const index = new KernelspecIndex({ homeRoot: homes, fs: lockedFs(locked), logger: log, ttlMs: 0 });
  const catalog = new KernelspecCatalog({ index });
  expect(await names(catalog, 'alice')).toEqual(['conda-env-tf-python3', 'mine']);
  expect(await names(catalog, 'bob')).toEqual([]);
  expect(await names(catalog, 'carol')).toEqual(['conda-env-c1-python3']);
  const warned = log.records.filter((r) => r.level === 'warn').map((r) => JSON.stringify(r.meta));
  for (const p of locked) expect(warned.some((w) => w.includes(p))).toBe(true);
  // Unchanged on the next passes: no new warnings.
  const before = log.records.length;
  await names(catalog, 'alice');
  await names(catalog, 'bob');
  expect(log.records.length).toBe(before);
});

test('injected EACCES on ~/.local and on .conda/envs themselves', async () => {
  const { homes } = setup();
  const catalog = new KernelspecCatalog({
    index: new KernelspecIndex({
      homeRoot: homes,
      fs: lockedFs([localKernelsDir(homes, 'alice'), path.join(homes, 'bob', '.conda', 'envs')]),
      ttlMs: 0,
    }),
  });
  expect(await names(catalog, 'alice')).toEqual([
    'conda-env-locked-python3',
    'conda-env-secretjson-python3',
    'conda-env-tf-python3',
  ]);
  expect(await names(catalog, 'bob')).toEqual([]);
  expect(await names(catalog, 'carol')).toEqual(['conda-env-c1-python3']);
});

const canDropPrivileges = process.getuid?.() === 0;

(canDropPrivileges ? test : test.skip)(
  'real EACCES for an unprivileged process (uid 65534, chmod 000)',
  async () => {
    const { homes } = setup();
    fs.chmodSync(condaKernelsDir(homes, 'alice', 'locked'), 0o000);
    fs.chmodSync(path.join(condaKernelsDir(homes, 'alice', 'secretjson'), 'python3', 'kernel.json'), 0o000);
    fs.chmodSync(path.join(homes, 'bob'), 0o000);
    // The child loads the TypeScript sources as root (through @swc/core), then drops to nobody.
    const script = `
    const swc = require('@swc/core');
    const fs = require('node:fs');
    require.extensions['.ts'] = (m, filename) => {
      const { code } = swc.transformSync(fs.readFileSync(filename, 'utf8'), {
        filename, jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' },
      });
      m._compile(code, filename);
    };
    const k = require('./src/kernels/index.ts');
    process.setgroups([]); process.setgid(65534); process.setuid(65534);
    const warnings = [];
    const logger = { warn: (m, meta) => warnings.push(meta), debug: () => {} };
    const catalog = new k.KernelspecCatalog({ index: new k.KernelspecIndex({ homeRoot: process.argv[1], logger, ttlMs: 0 }) });
    (async () => {
      const out = { uid: process.getuid(), warnings };
      for (const u of ['alice', 'bob', 'carol']) out[u] = (await catalog.list(u)).kernelspecs.map((s) => s.name);
      process.stdout.write(JSON.stringify(out));
    })().catch((e) => { console.error(e); process.exit(1); });
  `;
    const out = JSON.parse(
      execFileSync(process.execPath, ['-e', script, homes], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 }),
    );
    expect(out.uid).toBe(65534);
    expect(out.alice).toEqual(['conda-env-tf-python3', 'mine']);
    expect(out.bob).toEqual([]);
    expect(out.carol).toEqual(['conda-env-c1-python3']);
    const warned = JSON.stringify(out.warnings);
    expect(warned).toContain('EACCES');
    expect(warned).toContain(condaKernelsDir(homes, 'alice', 'locked'));
    expect(warned).toContain(path.join(homes, 'bob'));
  },
);
