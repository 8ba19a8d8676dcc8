/**
 * The quick check of an unchanged home (src/kernels/quick-check.ts): it must say "unchanged" exactly
 * when a full pass would change nothing, so an index that uses it lists what a fresh scan lists after
 * any change; it stats synchronously only on a local file system and only on the home's own device.
 */
import fs from 'node:fs';
import path from 'node:path';
import { KernelspecIndex, nodeFs, type KernelFs } from '../../src/kernels';
import type { DiscoveredKernelspec } from '../../src/kernels/kernelspec';
import { isLocalFsType, MAX_SYNC_STATS } from '../../src/kernels/quick-check';
import { condaEnv, condaKernelsDir, kernelJson, localKernelsDir, removeTrees, tmpTree, writeKernel } from './helpers';

afterAll(removeTrees);

/** What a listing shows of each kernelspec, comparable across index instances. */
const view = (ks: readonly DiscoveredKernelspec[]): unknown[] =>
  ks.map((k) => ({ name: k.name, source: k.source, environment: k.environment, spec: k.spec, resources: k.resources, dir: k.dir }));

/** nodeFs with its synchronous and asynchronous stats counted and its file-system type settable. */
function observedFs(fsType: number): KernelFs & { sync: number; async: number } {
  const o = {
    ...nodeFs,
    sync: 0,
    async: 0,
    fsType: async () => fsType,
    stat: (p: string) => (o.async++, nodeFs.stat(p)),
    statSync: (p: string) => (o.sync++, nodeFs.statSync!(p)),
  };
  return o;
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** A seeded generator, so a failure names the seed that reproduces it. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

test('the file-system types treated as local', () => {
  expect(isLocalFsType(0xef53)).toBe(true); // ext4
  expect(isLocalFsType(0x58465342)).toBe(true); // xfs
  expect(isLocalFsType(0x01021994)).toBe(true); // tmpfs
  expect(isLocalFsType(0x6969)).toBe(false); // nfs
  expect(isLocalFsType(0x65735546)).toBe(false); // fuse (s3fs, sshfs, virtiofs)
  expect(isLocalFsType(0xff534d42)).toBe(false); // cifs
});

test.each([1, 2, 3, 4, 5, 6])('after random changes (seed %i), the index lists exactly what a fresh scan lists', async (seed) => {
  const random = rng(seed);
  const root = tmpTree();
  const user = 'alice';
  const home = path.join(root, user);
  const envs = ['a', 'b', 'c'];
  for (const env of envs) condaEnv(root, user, env);
  writeKernel(localKernelsDir(root, user), 'mine', { json: kernelJson('Mine') });
  const outside = tmpTree('sg-outside');
  writeKernel(outside, 'evil', { json: kernelJson('Evil') });

  const ofs = observedFs(0xef53);
  const index = new KernelspecIndex({ homeRoot: root, fs: ofs, ttlMs: 0 });
  await index.userKernels(user);
  const pick = <T>(xs: T[]): T => xs[Math.floor(random() * xs.length)] as T;
  const kernelsDirs = (): string[] => [...envs.map((e) => condaKernelsDir(root, user, e)), localKernelsDir(root, user)];
  const kernelDirs = (): string[] =>
    kernelsDirs().flatMap((d) => (isDir(d) ? fs.readdirSync(d).map((n) => path.join(d, n)) : []));

  const changes: [string, () => void][] = [
    ['new env', () => { const e = `n${Math.floor(random() * 1e6)}`; envs.push(e); condaEnv(root, user, e); }],
    ['env removed', () => { const e = pick(envs); fs.rmSync(path.join(home, '.conda', 'envs', e), { recursive: true, force: true }); }],
    ['kernel added', () => writeKernel(pick(kernelsDirs()), `k${Math.floor(random() * 1e6)}`, { json: kernelJson('Added') })],
    ['kernel.json edited in place', () => { const d = pick(kernelDirs()); if (d) fs.writeFileSync(path.join(d, 'kernel.json'), JSON.stringify(kernelJson(`Edited ${random()}`))); }],
    ['kernel.json replaced by rename', () => { const d = pick(kernelDirs()); if (d) { fs.writeFileSync(path.join(d, 'k.tmp'), JSON.stringify(kernelJson(`Renamed ${random()}`))); fs.renameSync(path.join(d, 'k.tmp'), path.join(d, 'kernel.json')); } }],
    ['kernel.json broken', () => { const d = pick(kernelDirs()); if (d) fs.writeFileSync(path.join(d, 'kernel.json'), '{ not json'); }],
    ['logo added', () => { const d = pick(kernelDirs()); if (d) fs.writeFileSync(path.join(d, 'logo-64x64.png'), 'x'); }],
    ['logo removed', () => { const d = pick(kernelDirs()); if (d) fs.rmSync(path.join(d, 'logo-64x64.png'), { force: true }); }],
    ['kernel dir renamed', () => { const d = pick(kernelDirs()); if (d) fs.renameSync(d, `${d}-r`); }],
    ['kernel dir swapped for a link out of the home', () => { const d = pick(kernelDirs()); if (d) { fs.rmSync(d, { recursive: true }); fs.symlinkSync(path.join(outside, 'evil'), d); } }],
    ['kernels dir replaced by a file', () => { const d = pick(kernelsDirs()); fs.rmSync(d, { recursive: true, force: true }); fs.mkdirSync(path.dirname(d), { recursive: true }); fs.writeFileSync(d, 'x'); }],
    ['kernels dir back', () => { const d = pick(kernelsDirs()); fs.rmSync(d, { recursive: true, force: true }); writeKernel(d, 'back', { json: kernelJson('Back') }); }],
    ['~/.local removed', () => fs.rmSync(path.join(home, '.local'), { recursive: true, force: true })],
    ['.conda/envs replaced by a file', () => { fs.rmSync(path.join(home, '.conda', 'envs'), { recursive: true, force: true }); fs.writeFileSync(path.join(home, '.conda', 'envs'), 'x'); }],
    ['.conda/envs back', () => { fs.rmSync(path.join(home, '.conda', 'envs'), { recursive: true, force: true }); condaEnv(root, user, pick(envs)); }],
    ['nothing', () => undefined],
  ];
  for (let step = 0; step < 40; step++) {
    const [what, change] = pick(changes);
    try {
      change();
    } catch {
      // The tree is in a shape this change cannot apply to (a file where a directory was): no change.
    }
    const fresh = view(await new KernelspecIndex({ homeRoot: root }).userKernels(user));
    // Two requests: the first may see the change, the second must be answered by the quick check.
    expect({ step, what, listed: view(await index.userKernels(user)) }).toEqual({ step, what, listed: fresh });
    expect({ step, what, listed: view(await index.userKernels(user)) }).toEqual({ step, what, listed: fresh });
  }
  expect(ofs.sync).toBeGreaterThan(0);
});

test('an unchanged home on a local file system is revalidated with synchronous stats only', async () => {
  const root = tmpTree();
  for (const env of ['a', 'b', 'c', 'd', 'e']) condaEnv(root, 'alice', env);
  const ofs = observedFs(0xef53);
  const index = new KernelspecIndex({ homeRoot: root, fs: ofs, ttlMs: 0 });
  await index.userKernels('alice');
  ofs.sync = ofs.async = 0;
  for (let i = 0; i < 10; i++) expect(await index.userKernels('alice')).toHaveLength(5);
  // .conda/envs + 5 × (kernels dir + kernel dir + kernel.json) + ~/.local's kernels dir, per request
  expect({ sync: ofs.sync, async: ofs.async }).toEqual({ sync: 10 * 17, async: 0 });
});

test('on a file system not known to be local (NFS), no stat is synchronous', async () => {
  const root = tmpTree();
  for (const env of ['a', 'b']) condaEnv(root, 'alice', env);
  const ofs = observedFs(0x6969);
  const index = new KernelspecIndex({ homeRoot: root, fs: ofs, ttlMs: 0 });
  await index.userKernels('alice');
  for (let i = 0; i < 5; i++) await index.userKernels('alice');
  expect(ofs.sync).toBe(0);
  expect(ofs.async).toBeGreaterThan(5 * 7);
});

test('a path on another device than the home (a mount inside it) ends synchronous stats for that home', async () => {
  const root = tmpTree();
  condaEnv(root, 'alice', 'a');
  const mounted = condaKernelsDir(root, 'alice', 'a');
  const ofs = observedFs(0xef53);
  // The kernels directory reports another device, as a mount point would.
  ofs.statSync = (p: string) => {
    ofs.sync++;
    const st = nodeFs.statSync!(p);
    return st && p === mounted ? Object.assign(Object.create(Object.getPrototypeOf(st) as object) as fs.Stats, st, { dev: st.dev + 1 }) : st;
  };
  const index = new KernelspecIndex({ homeRoot: root, fs: ofs, ttlMs: 0 });
  await index.userKernels('alice');
  ofs.sync = ofs.async = 0;
  await index.userKernels('alice'); // the quick check meets the other device and gives up on sync
  const afterFirst = ofs.sync;
  expect(afterFirst).toBeGreaterThan(0);
  for (let i = 0; i < 3; i++) expect(await index.userKernels('alice')).toHaveLength(1);
  expect(ofs.sync).toBe(afterFirst);
  expect(ofs.async).toBeGreaterThan(0);
});

test('a home with more kernelspecs than one synchronous check may stat is checked asynchronously', async () => {
  const root = tmpTree();
  // Each conda kernel costs three stats: 70 environments are past MAX_SYNC_STATS (200).
  for (let i = 0; i < 70; i++) condaEnv(root, 'alice', `e${i}`, 'python3', {}, false);
  expect(3 * 70).toBeGreaterThan(MAX_SYNC_STATS);
  const ofs = observedFs(0xef53);
  const index = new KernelspecIndex({ homeRoot: root, fs: ofs, ttlMs: 0 });
  expect(await index.userKernels('alice')).toHaveLength(70);
  ofs.sync = ofs.async = 0;
  await index.userKernels('alice'); // the check gives up at the bound…
  expect(ofs.sync).toBe(MAX_SYNC_STATS);
  ofs.sync = ofs.async = 0;
  for (let i = 0; i < 3; i++) expect(await index.userKernels('alice')).toHaveLength(70);
  expect(ofs.sync).toBe(0); // …and the home is checked asynchronously from then on
  expect(ofs.async).toBeGreaterThanOrEqual(3 * (1 + 3 * 70 + 1));
});
