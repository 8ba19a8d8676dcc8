/**
 * The index's cost and freshness: no file-system call within the TTL, only stats on revalidation,
 * re-reads limited to what changed, cost independent of the number of users, LRU bound, and a new
 * environment listed within 2 s with the default TTL.
 */
import fs from 'node:fs';
import path from 'node:path';
import { KernelspecCatalog, KernelspecIndex, nodeFs, type KernelFs } from '../../src/kernels';
import { condaEnv, condaKernelsDir, kernelJson, names, removeTrees, tmpTree, writeKernel } from './helpers';

afterAll(removeTrees);

type Op = 'stat' | 'realpath' | 'readdir' | 'open';

/** nodeFs that counts calls (and can be reset). */
function countingFs(): KernelFs & {
  calls: Record<Op, number>;
  paths: string[];
  reset(): void;
  total(): number;
} {
  const calls: Record<Op, number> = { stat: 0, realpath: 0, readdir: 0, open: 0 };
  const paths: string[] = [];
  const note = (op: Op, p: string): void => {
    calls[op]++;
    paths.push(`${op} ${p}`);
  };
  return {
    calls,
    paths,
    reset() {
      for (const k of Object.keys(calls) as Op[]) calls[k] = 0;
      paths.length = 0;
    },
    total: () => calls.stat + calls.realpath + calls.readdir + calls.open,
    stat: (p) => (note('stat', p), nodeFs.stat(p)),
    realpath: (p) => (note('realpath', p), nodeFs.realpath(p)),
    readdir: (p) => (note('readdir', p), nodeFs.readdir(p)),
    open: (p, f) => (note('open', p), nodeFs.open(p, f)),
  };
}

function manualClock(): { now: () => number; advance: (ms: number) => void } {
  let t = 0;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

test('within the TTL a listing touches no file at all', async () => {
  const root = tmpTree();
  condaEnv(root, 'alice', 'tf');
  const fsl = countingFs();
  const clock = manualClock();
  const index = new KernelspecIndex({ homeRoot: root, fs: fsl, now: clock.now, ttlMs: 1000 });
  await index.userKernels('alice');
  fsl.reset();
  clock.advance(999);
  for (let i = 0; i < 100; i++) await index.userKernels('alice');
  expect(fsl.total()).toBe(0);
});

test('revalidation of an unchanged home is one round of stats: .conda/envs, per env kernels dir, per kernel dir, ~/.local', async () => {
  const root = tmpTree();
  for (const env of ['a', 'b', 'c', 'd', 'e']) condaEnv(root, 'alice', env);
  const fsl = countingFs();
  const clock = manualClock();
  const index = new KernelspecIndex({
    homeRoot: root,
    fs: fsl,
    now: clock.now,
    ttlMs: 1000,
    fileTtlMs: 30_000,
  });
  await index.userKernels('alice');
  fsl.reset();
  clock.advance(1000);
  expect(await index.userKernels('alice')).toHaveLength(5);
  // home-root realpath (once per TTL for all users) + .conda/envs + 5 × (kernels dir + kernel dir) + ~/.local
  expect(fsl.calls).toEqual({ stat: 1 + 5 * 2 + 1, realpath: 1, readdir: 0, open: 0 });
  // Every fileTtlMs the kernel.json files are stat-ed too (in-place edits).
  fsl.reset();
  clock.advance(30_000);
  await index.userKernels('alice');
  expect(fsl.calls).toEqual({ stat: 1 + 5 * 3 + 1, realpath: 1, readdir: 0, open: 0 });
});

test('concurrent requests for one user share one revalidation pass', async () => {
  const root = tmpTree();
  condaEnv(root, 'alice', 'tf');
  const fsl = countingFs();
  const index = new KernelspecIndex({ homeRoot: root, fs: fsl, ttlMs: 1000 });
  await Promise.all(Array.from({ length: 50 }, () => index.userKernels('alice')));
  expect(fsl.calls.open).toBe(1);
});

test('only what changed is read again', async () => {
  const root = tmpTree();
  for (const env of ['a', 'b', 'c']) condaEnv(root, 'alice', env);
  const fsl = countingFs();
  const clock = manualClock();
  const index = new KernelspecIndex({ homeRoot: root, fs: fsl, now: clock.now, ttlMs: 1000 });
  await index.userKernels('alice');
  condaEnv(root, 'alice', 'new');
  fsl.reset();
  clock.advance(1000);
  expect((await index.userKernels('alice')).map((k) => k.name)).toContain('conda-env-new-python3');
  expect(fsl.paths.filter((p) => p.startsWith('open'))).toEqual([
    `open ${condaKernelsDir(root, 'alice', 'new')}/python3/kernel.json`,
  ]);

  // Rewriting a kernelspec by rename (jupyter kernelspec install, most editors) is seen at the next pass.
  const dirB = path.join(condaKernelsDir(root, 'alice', 'b'), 'python3');
  fs.writeFileSync(path.join(dirB, 'kernel.json.tmp'), JSON.stringify(kernelJson('saved by rename')));
  fs.renameSync(path.join(dirB, 'kernel.json.tmp'), path.join(dirB, 'kernel.json'));
  fsl.reset();
  clock.advance(1000);
  const b = (): Promise<string | undefined> =>
    index
      .userKernels('alice')
      .then((ks) => ks.find((k) => k.name === 'conda-env-b-python3')?.spec.display_name);
  expect(await b()).toBe('saved by rename');
  expect(fsl.calls.open).toBe(1);

  // An edit in place (no directory change) is noticed through kernel.json's own stat, every fileTtlMs.
  const fd = fs.openSync(path.join(dirB, 'kernel.json'), 'r+');
  fs.ftruncateSync(fd, 0);
  fs.writeSync(fd, JSON.stringify(kernelJson('edited in place')), 0);
  fs.closeSync(fd);
  clock.advance(1000);
  expect(await b()).toBe('saved by rename');
  clock.advance(30_000);
  expect(await b()).toBe('edited in place');
});

test('cost of a request does not depend on the number of users', async () => {
  const measure = async (
    users: number,
  ): Promise<{ first: Record<Op, number>; again: Record<Op, number> }> => {
    const root = tmpTree();
    for (let i = 0; i < users; i++) condaEnv(root, `u${i}`, 'tf', 'python3', {}, false);
    condaEnv(root, 'alice', 'tf');
    condaEnv(root, 'alice', 'torch');
    const fsl = countingFs();
    const clock = manualClock();
    const index = new KernelspecIndex({ homeRoot: root, fs: fsl, now: clock.now, ttlMs: 1000 });
    for (let i = 0; i < users; i += 7) await index.userKernels(`u${i}`); // other users warm in the index
    fsl.reset();
    clock.advance(1000);
    await index.userKernels('alice');
    const first = { ...fsl.calls };
    fsl.reset();
    clock.advance(1000);
    await index.userKernels('alice');
    return { first, again: { ...fsl.calls } };
  };
  const small = await measure(10);
  const large = await measure(2000);
  expect(large).toEqual(small);
}, 60_000);

test('the LRU bound keeps at most maxUsers users', async () => {
  const root = tmpTree();
  for (const u of ['a', 'b', 'c', 'd', 'e']) condaEnv(root, u, 'tf');
  const index = new KernelspecIndex({ homeRoot: root, maxUsers: 3 });
  for (const u of ['a', 'b', 'c', 'd', 'e']) await index.userKernels(u);
  expect(index.stats().users).toBe(3);
  expect(await index.userKernels('a')).toHaveLength(1); // evicted, read again
});

test('a new environment is listed within 2 s with the default TTL (real clock)', async () => {
  const root = tmpTree();
  condaEnv(root, 'alice', 'tf');
  const catalog = new KernelspecCatalog({ index: new KernelspecIndex({ homeRoot: root }) });
  expect(await names(catalog, 'alice')).toEqual(['conda-env-tf-python3']);
  // A conda create: the env directory first, its kernelspec a moment later.
  fs.mkdirSync(path.join(root, 'alice', '.conda', 'envs', 'fresh', 'bin'), { recursive: true });
  await new Promise((r) => setTimeout(r, 100));
  expect(await names(catalog, 'alice')).toEqual(['conda-env-tf-python3']);
  const created = performance.now();
  writeKernel(condaKernelsDir(root, 'alice', 'fresh'), 'python3', { json: kernelJson('fresh') });
  let seenAfter = Infinity;
  while (performance.now() - created < 3000) {
    if ((await names(catalog, 'alice')).includes('conda-env-fresh-python3')) {
      seenAfter = performance.now() - created;
      break;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  expect(seenAfter).toBeLessThan(2000);
  // Removal is noticed the same way.
  fs.rmSync(path.join(root, 'alice', '.conda', 'envs', 'tf'), { recursive: true });
  await new Promise((r) => setTimeout(r, 1100));
  expect(await names(catalog, 'alice')).toEqual(['conda-env-fresh-python3']);
});

test('shared kernelspecs are cached and revalidated the same way', async () => {
  const shared = tmpTree();
  writeKernel(shared, 'python3', { json: kernelJson('Python 3') });
  const fsl = countingFs();
  const clock = manualClock();
  const index = new KernelspecIndex({
    homeRoot: '/nonexistent',
    sharedDirs: [shared],
    fs: fsl,
    now: clock.now,
  });
  expect(await index.sharedKernels()).toHaveLength(1);
  fsl.reset();
  await index.sharedKernels();
  expect(fsl.total()).toBe(0);
  writeKernel(shared, 'julia', { json: kernelJson('Julia') });
  clock.advance(1000);
  expect((await index.sharedKernels()).map((k) => k.name)).toEqual(['julia', 'python3']);
  expect(fsl.calls.open).toBe(1);
});
