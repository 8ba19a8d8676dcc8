/**
 * The index's cost and freshness: no file-system call within the TTL, only stats on revalidation (one
 * per directory level plus each kernel.json), re-reads limited to what changed, stale-while-revalidate
 * within the freshness bound, cost independent of the number of users, LRU bound, and new, removed and
 * edited (in place too) kernelspecs listed within 2 s with the defaults.
 */
import fs from 'node:fs';
import path from 'node:path';
import { KernelspecCatalog, KernelspecIndex, nodeFs, type KernelFs } from '../../src/kernels';
import {
  condaEnv,
  condaKernelsDir,
  kernelJson,
  localKernelsDir,
  names,
  removeTrees,
  tmpTree,
  writeKernel,
} from './helpers';

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

test('revalidation of an unchanged home is one round of stats: one per directory level and one per kernel.json', async () => {
  const root = tmpTree();
  for (const env of ['a', 'b', 'c', 'd', 'e']) condaEnv(root, 'alice', env);
  const fsl = countingFs();
  const clock = manualClock();
  const index = new KernelspecIndex({ homeRoot: root, fs: fsl, now: clock.now, ttlMs: 1000 });
  await index.userKernels('alice');
  for (let pass = 0; pass < 2; pass++) {
    fsl.reset();
    clock.advance(1500); // beyond maxStaleMs: the request waits for the pass
    expect(await index.userKernels('alice')).toHaveLength(5);
    // home-root realpath (once per TTL for all users) + .conda/envs + 5 × (kernels dir + kernel dir +
    // kernel.json) + ~/.local's kernels dir
    expect(fsl.calls).toEqual({ stat: 1 + 5 * 3 + 1, realpath: 1, readdir: 0, open: 0 });
    const home = path.join(root, 'alice');
    const expected = [`realpath ${root}`, `stat ${home}/.conda/envs`, `stat ${home}/.local/share/jupyter/kernels`];
    for (const env of ['a', 'b', 'c', 'd', 'e']) {
      const k = condaKernelsDir(root, 'alice', env);
      expected.push(`stat ${k}`, `stat ${k}/python3`, `stat ${k}/python3/kernel.json`);
    }
    expect([...fsl.paths].sort()).toEqual(expected.sort());
  }
});

/** nodeFs whose calls wait while `hold()` is in force (a slow NFS server), counting the calls made. */
function gatedFs(): KernelFs & { hold(): void; release(): void; calls: () => number } {
  let gate: Promise<void> | undefined;
  let open: (() => void) | undefined;
  let calls = 0;
  const wrap =
    <A extends unknown[], R>(f: (...a: A) => Promise<R>) =>
    async (...a: A): Promise<R> => {
      calls++;
      if (gate) await gate;
      return f(...a);
    };
  return {
    hold() {
      gate = new Promise((r) => (open = r));
    },
    release() {
      gate = undefined;
      open?.();
    },
    calls: () => calls,
    stat: wrap(nodeFs.stat),
    realpath: wrap(nodeFs.realpath),
    readdir: wrap(nodeFs.readdir),
    open: wrap(nodeFs.open),
  };
}

test('a state older than ttlMs but within maxStaleMs is answered at once while one pass runs behind it', async () => {
  const root = tmpTree();
  condaEnv(root, 'alice', 'tf');
  const gfs = gatedFs();
  const clock = manualClock();
  const index = new KernelspecIndex({ homeRoot: root, fs: gfs, now: clock.now, ttlMs: 1000, maxStaleMs: 2000 });
  expect(await index.userKernels('alice')).toHaveLength(1);
  condaEnv(root, 'alice', 'new');
  gfs.hold(); // the file system stops answering
  clock.advance(1999);
  const before = gfs.calls();
  // Answered from memory although no file-system call can complete.
  for (let i = 0; i < 20; i++) expect(await index.userKernels('alice')).toHaveLength(1);
  const during = gfs.calls() - before;
  expect(during).toBeGreaterThan(0); // the pass has started…
  await new Promise((r) => setTimeout(r, 20));
  expect(await index.userKernels('alice')).toHaveLength(1);
  expect(gfs.calls() - before).toBe(during); // …once: later requests joined it, none started another
  gfs.release();
  await index.settled();
  expect((await index.userKernels('alice')).map((k) => k.name)).toEqual([
    'conda-env-new-python3',
    'conda-env-tf-python3',
  ]);
});

test('a state older than maxStaleMs is never served: the request waits for the pass', async () => {
  const root = tmpTree();
  condaEnv(root, 'alice', 'tf');
  const gfs = gatedFs();
  const clock = manualClock();
  const index = new KernelspecIndex({ homeRoot: root, fs: gfs, now: clock.now, ttlMs: 1000, maxStaleMs: 2000 });
  await index.userKernels('alice');
  condaEnv(root, 'alice', 'new');
  gfs.hold();
  clock.advance(2000);
  let answered: readonly unknown[] | undefined;
  const request = index.userKernels('alice').then((ks) => (answered = ks));
  await new Promise((r) => setTimeout(r, 50));
  expect(answered).toBeUndefined();
  gfs.release();
  await request;
  expect(answered).toHaveLength(2);
});

test('with ttlMs 0 every request waits for a fresh pass', async () => {
  const root = tmpTree();
  condaEnv(root, 'alice', 'tf');
  const index = new KernelspecIndex({ homeRoot: root, ttlMs: 0 });
  expect(await index.userKernels('alice')).toHaveLength(1);
  condaEnv(root, 'alice', 'new');
  expect(await index.userKernels('alice')).toHaveLength(2);
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
  clock.advance(1500);
  expect((await index.userKernels('alice')).map((k) => k.name)).toContain('conda-env-new-python3');
  expect(fsl.paths.filter((p) => p.startsWith('open'))).toEqual([
    `open ${condaKernelsDir(root, 'alice', 'new')}/python3/kernel.json`,
  ]);

  // Rewriting a kernelspec by rename (jupyter kernelspec install, most editors) is seen at the next pass.
  const dirB = path.join(condaKernelsDir(root, 'alice', 'b'), 'python3');
  fs.writeFileSync(path.join(dirB, 'kernel.json.tmp'), JSON.stringify(kernelJson('saved by rename')));
  fs.renameSync(path.join(dirB, 'kernel.json.tmp'), path.join(dirB, 'kernel.json'));
  fsl.reset();
  clock.advance(1500);
  const b = (): Promise<string | undefined> =>
    index
      .userKernels('alice')
      .then((ks) => ks.find((k) => k.name === 'conda-env-b-python3')?.spec.display_name);
  expect(await b()).toBe('saved by rename');
  expect(fsl.calls.open).toBe(1);

  // An edit in place changes no directory's mtime; kernel.json's own stat sees it at the next pass.
  const dirMtime = fs.statSync(dirB).mtimeMs;
  const fd = fs.openSync(path.join(dirB, 'kernel.json'), 'r+');
  fs.ftruncateSync(fd, 0);
  fs.writeSync(fd, JSON.stringify(kernelJson('edited in place')), 0);
  fs.closeSync(fd);
  expect(fs.statSync(dirB).mtimeMs).toBe(dirMtime);
  fsl.reset();
  clock.advance(1500);
  expect(await b()).toBe('edited in place');
  expect(fsl.calls.open).toBe(1);
  expect(fsl.calls.readdir).toBe(1); // the changed kernel's directory (its resources), nothing else

  // A logo added to a kernel directory changes that directory: its resources are listed again.
  fs.writeFileSync(path.join(dirB, 'kernel.js'), 'define([], function () { return {}; });\n');
  clock.advance(1500);
  const kb = (await index.userKernels('alice')).find((k) => k.name === 'conda-env-b-python3');
  expect(Object.keys(kb?.resources ?? {})).toContain('kernel.js');
});

test('a known kernel.json or kernel directory swapped for a symlink out of the home is hidden at the next pass, the target never opened', async () => {
  const root = tmpTree();
  const outside = tmpTree('sg-outside');
  writeKernel(outside, 'evil', { json: kernelJson('outside') });
  condaEnv(root, 'alice', 'tf');
  condaEnv(root, 'alice', 'torch');
  condaEnv(root, 'bob', 'secret');
  const fsl = countingFs();
  const clock = manualClock();
  const index = new KernelspecIndex({ homeRoot: root, fs: fsl, now: clock.now, ttlMs: 1000 });
  expect(await index.userKernels('alice')).toHaveLength(2);
  // kernel.json replaced by rename with a link to a file outside the home.
  const tfDir = path.join(condaKernelsDir(root, 'alice', 'tf'), 'python3');
  fs.symlinkSync(path.join(outside, 'evil', 'kernel.json'), path.join(tfDir, 'link.tmp'));
  fs.renameSync(path.join(tfDir, 'link.tmp'), path.join(tfDir, 'kernel.json'));
  // A whole kernel directory replaced with a link into another user's home.
  const torchDir = path.join(condaKernelsDir(root, 'alice', 'torch'), 'python3');
  fs.rmSync(torchDir, { recursive: true });
  fs.symlinkSync(path.join(condaKernelsDir(root, 'bob', 'secret'), 'python3'), torchDir);
  fsl.reset();
  clock.advance(1500);
  expect(await index.userKernels('alice')).toEqual([]);
  const opened = fsl.paths.filter((p) => p.startsWith('open'));
  expect(opened.filter((p) => p.includes(outside) || p.includes(`${path.sep}bob${path.sep}`))).toEqual([]);
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
    clock.advance(1500);
    await index.userKernels('alice');
    const first = { ...fsl.calls };
    fsl.reset();
    clock.advance(1500);
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

/** Polls `catalog` every 20 ms (steady traffic) until `done` holds; returns how long that took, ms. */
async function seenAfter(
  catalog: KernelspecCatalog,
  user: string,
  done: (names: string[], displayNames: Map<string, string>) => boolean,
  since: number,
): Promise<number> {
  while (performance.now() - since < 4000) {
    const listing = await catalog.list(user);
    const display = new Map(listing.kernelspecs.map((k) => [k.name, k.spec.display_name] as const));
    if (done([...display.keys()], display)) return performance.now() - since;
    await new Promise((r) => setTimeout(r, 20));
  }
  return Infinity;
}

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
  expect(await seenAfter(catalog, 'alice', (n) => n.includes('conda-env-fresh-python3'), created)).toBeLessThan(2000);
  // Removal is noticed the same way.
  const removed = performance.now();
  fs.rmSync(path.join(root, 'alice', '.conda', 'envs', 'tf'), { recursive: true });
  expect(await seenAfter(catalog, 'alice', (n) => !n.includes('conda-env-tf-python3'), removed)).toBeLessThan(2000);
  expect(await names(catalog, 'alice')).toEqual(['conda-env-fresh-python3']);
}, 20_000);

test('an in-place edit of kernel.json, and one kernelspec removed, are listed within 2 s (real clock)', async () => {
  const root = tmpTree();
  condaEnv(root, 'alice', 'tf');
  writeKernel(localKernelsDir(root, 'alice'), 'mine', { json: kernelJson('Mine') });
  writeKernel(localKernelsDir(root, 'alice'), 'other', { json: kernelJson('Other') });
  const catalog = new KernelspecCatalog({ index: new KernelspecIndex({ homeRoot: root }) });
  expect(await names(catalog, 'alice')).toEqual(['conda-env-tf-python3', 'mine', 'other']);
  const json = path.join(localKernelsDir(root, 'alice'), 'mine', 'kernel.json');
  const edited = performance.now();
  fs.writeFileSync(json, JSON.stringify(kernelJson('Mine, edited'))); // truncates and writes in place
  expect(await seenAfter(catalog, 'alice', (_n, d) => d.get('mine') === 'Mine, edited', edited)).toBeLessThan(2000);
  const removed = performance.now();
  fs.rmSync(path.join(localKernelsDir(root, 'alice'), 'other'), { recursive: true });
  expect(await seenAfter(catalog, 'alice', (n) => !n.includes('other'), removed)).toBeLessThan(2000);
  expect(await names(catalog, 'alice')).toEqual(['conda-env-tf-python3', 'mine']);
}, 20_000);

test('a kernel.json broken in place hides only that kernelspec, within 2 s, and shows again once fixed', async () => {
  const root = tmpTree();
  condaEnv(root, 'alice', 'tf');
  condaEnv(root, 'alice', 'torch');
  const catalog = new KernelspecCatalog({ index: new KernelspecIndex({ homeRoot: root }) });
  expect(await names(catalog, 'alice')).toEqual(['conda-env-tf-python3', 'conda-env-torch-python3']);
  const json = path.join(condaKernelsDir(root, 'alice', 'tf'), 'python3', 'kernel.json');
  const broken = performance.now();
  fs.writeFileSync(json, '{"argv": [');
  expect(await seenAfter(catalog, 'alice', (n) => !n.includes('conda-env-tf-python3'), broken)).toBeLessThan(2000);
  expect(await names(catalog, 'alice')).toEqual(['conda-env-torch-python3']);
  const fixed = performance.now();
  fs.writeFileSync(json, JSON.stringify(kernelJson('tf again')));
  expect(await seenAfter(catalog, 'alice', (n) => n.includes('conda-env-tf-python3'), fixed)).toBeLessThan(2000);
}, 20_000);

test('after 2 s without requests, the next request waits for a pass and sees the change (real clock)', async () => {
  const root = tmpTree();
  condaEnv(root, 'alice', 'tf');
  const catalog = new KernelspecCatalog({ index: new KernelspecIndex({ homeRoot: root }) });
  expect(await names(catalog, 'alice')).toEqual(['conda-env-tf-python3']);
  condaEnv(root, 'alice', 'late');
  await new Promise((r) => setTimeout(r, 2000));
  expect(await names(catalog, 'alice')).toEqual(['conda-env-late-python3', 'conda-env-tf-python3']);
}, 20_000);

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
  // Stale but within the bound: answered at once, the pass runs behind it.
  expect((await index.sharedKernels()).map((k) => k.name)).toEqual(['python3']);
  await index.settled();
  expect((await index.sharedKernels()).map((k) => k.name)).toEqual(['julia', 'python3']);
  expect(fsl.calls.open).toBe(1);
});
