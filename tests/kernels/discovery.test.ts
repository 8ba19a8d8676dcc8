/**
 * Discovery over real trees: the kernelspec model, environments, resources, precedence, and every
 * bad input of issue 3 — each must hide only itself, never another kernelspec or another user's list.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { InvalidUsernameError, KernelspecCatalog, KernelspecIndex } from '../../src/kernels';
import {
  condaEnv,
  condaKernelsDir,
  kernelJson,
  localKernelsDir,
  makeCatalog,
  names,
  recordingLogger,
  removeTrees,
  tmpTree,
  writeKernel,
} from './helpers';

afterAll(removeTrees);

interface Tree {
  root: string;
  homes: string;
  shared: string;
  catalog: KernelspecCatalog;
  log: ReturnType<typeof recordingLogger>;
}

const ALICE = ['conda-env-r-ir', 'conda-env-tf-python3', 'mykernel', 'python3'];
const BOB = ['conda-env-bobenv-python3', 'python3'];

/** alice: conda envs tf (python3) and r (ir), ~/.local kernel `mykernel`; bob: conda env bobenv; shared: python3. */
function tree(opts: { ttlMs?: number } = {}): Tree {
  const root = tmpTree();
  const homes = path.join(root, 'home');
  const shared = path.join(root, 'shared');
  condaEnv(homes, 'alice', 'tf');
  condaEnv(homes, 'alice', 'r', 'ir', { language: 'R' });
  writeKernel(localKernelsDir(homes, 'alice'), 'mykernel', { json: kernelJson('Mine'), js: true });
  condaEnv(homes, 'bob', 'bobenv');
  writeKernel(shared, 'python3', { json: kernelJson('Python 3 (shared)'), logos: true });
  const log = recordingLogger();
  const catalog = makeCatalog({ homeRoot: homes, sharedDirs: [shared], logger: log, ttlMs: opts.ttlMs ?? 0 });
  return { root, homes, shared, catalog, log };
}

/** The invariant of every bad-input test: alice keeps her good kernels, bob keeps all of his. */
async function othersIntact(t: Tree, aliceExpected = ALICE, bobExpected = BOB): Promise<void> {
  expect(await names(t.catalog, 'alice')).toEqual(aliceExpected);
  expect(await names(t.catalog, 'bob')).toEqual(bobExpected);
}

function warnedAbout(t: Tree, fragment: string): boolean {
  return t.log.records.some((r) => r.level === 'warn' && JSON.stringify(r.meta ?? {}).includes(fragment));
}

describe('kernelspec model', () => {
  test('lists conda, ~/.local and shared kernelspecs with the full model and resources', async () => {
    const t = tree();
    const listing = await t.catalog.list('alice');
    expect(listing.kernelspecs.map((k) => k.name)).toEqual(ALICE);
    const tf = JSON.parse(t.catalog.modelJson(listing.kernelspecs[1]!));
    expect(tf).toEqual({
      name: 'conda-env-tf-python3',
      spec: {
        argv: ['python', '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
        display_name: 'tf (alice)',
        language: 'python',
        env: {},
        metadata: {},
        interrupt_mode: 'signal',
      },
      resources: {
        'logo-32x32': '/kernelspecs/conda-env-tf-python3/logo-32x32.png',
        'logo-64x64': '/kernelspecs/conda-env-tf-python3/logo-64x64.png',
        'logo-svg': '/kernelspecs/conda-env-tf-python3/logo-svg.svg',
      },
    });
    const mine = JSON.parse(t.catalog.modelJson(listing.kernelspecs[2]!));
    expect(mine.resources).toEqual({
      'kernel.css': '/kernelspecs/mykernel/kernel.css',
      'kernel.js': '/kernelspecs/mykernel/kernel.js',
    });
    expect(listing.default).toBe('python3');
  });

  test('keeps env, metadata and interrupt_mode verbatim', async () => {
    const t = tree();
    const metadata = {
      debugger: true,
      process_proxy: { class_name: 'x.Y', config: { authorized_users: 'alice' } },
    };
    condaEnv(t.homes, 'alice', 'full', 'k', { env: { A: '1' }, metadata, interrupt_mode: 'message' });
    const model = await t.catalog.model('alice', 'conda-env-full-k');
    expect(model.spec).toMatchObject({ env: { A: '1' }, metadata, interrupt_mode: 'message' });
  });

  test('environment: metadata.spawngate.environment > env.KERNEL_ENV_EXP > conda env directory; none for plain user kernels', async () => {
    const t = tree();
    condaEnv(t.homes, 'alice', 'e1', 'k', {
      metadata: { spawngate: { environment: 'meta-env' } },
      env: { KERNEL_ENV_EXP: 'exp-env' },
    });
    condaEnv(t.homes, 'alice', 'e2', 'k', { env: { KERNEL_ENV_EXP: 'exp-env' } });
    writeKernel(localKernelsDir(t.homes, 'alice'), 'explicit', {
      json: kernelJson('x', { env: { KERNEL_ENV_EXP: 'proj' } }),
    });
    writeKernel(t.shared, 'gpu', {
      json: kernelJson('gpu', { metadata: { spawngate: { environment: 'gpu-env' } } }),
    });
    const env = async (name: string): Promise<string | null> =>
      (await t.catalog.resolve('alice', name)).environment;
    expect(await env('conda-env-e1-k')).toBe('meta-env');
    expect(await env('conda-env-e2-k')).toBe('exp-env');
    expect(await env('conda-env-tf-python3')).toBe('tf');
    expect(await env('mykernel')).toBeNull();
    expect(await env('explicit')).toBe('proj');
    expect(await env('python3')).toBeNull();
    expect(await env('gpu')).toBe('gpu-env');
  });

  test('resolve() gives the launch path spec, environment and real directory', async () => {
    const t = tree();
    const r = await t.catalog.resolve('alice', 'conda-env-tf-python3');
    expect(r).toMatchObject({
      name: 'conda-env-tf-python3',
      source: 'conda',
      environment: 'tf',
      user: 'alice',
    });
    expect(r.dir).toBe(condaKernelsDir(t.homes, 'alice', 'tf') + '/python3');
    expect(r.spec.argv[0]).toBe('python');
  });

  test('a missing home is an empty list of own kernelspecs (shared still listed), not an error', async () => {
    const t = tree();
    expect(await names(t.catalog, 'nobody-here')).toEqual(['python3']);
    expect(t.log.records.filter((r) => r.level === 'warn')).toEqual([]);
  });

  test('a missing home root or shared directory is not an error either', async () => {
    const root = tmpTree();
    const c = makeCatalog({ homeRoot: path.join(root, 'nope'), sharedDirs: [path.join(root, 'nope2')] });
    expect(await names(c, 'alice')).toEqual([]);
  });
});

describe('precedence on name clashes', () => {
  test('a shared kernelspec owns its name: the user kernelspec of the same name is not offered', async () => {
    const t = tree();
    writeKernel(localKernelsDir(t.homes, 'alice'), 'python3', { json: kernelJson('alice own python3') });
    const listing = await t.catalog.list('alice');
    expect(listing.kernelspecs.map((k) => k.name)).toEqual(ALICE);
    const py = listing.kernelspecs.find((k) => k.name === 'python3')!;
    expect(py.source).toBe('shared');
    expect(py.spec.display_name).toBe('Python 3 (shared)');
    expect((await t.catalog.resolve('alice', 'python3')).source).toBe('shared');
  });

  test('…even when the shared one is not authorized for the user (403, the user one stays hidden)', async () => {
    const t = tree();
    writeKernel(t.shared, 'special', {
      json: kernelJson('s', { metadata: { process_proxy: { config: { authorized_users: 'bob' } } } }),
    });
    writeKernel(localKernelsDir(t.homes, 'alice'), 'special', { json: kernelJson('alice special') });
    await othersIntact(t, ALICE, [...BOB, 'special']);
    await expect(t.catalog.resolve('alice', 'special')).rejects.toMatchObject({
      name: 'KernelspecForbiddenError',
    });
  });

  test('conda kernelspecs win over ~/.local ones of the same name', async () => {
    const t = tree();
    writeKernel(localKernelsDir(t.homes, 'alice'), 'conda-env-tf-python3', { json: kernelJson('impostor') });
    const k = (await t.catalog.list('alice')).kernelspecs.find((x) => x.name === 'conda-env-tf-python3')!;
    expect(k.source).toBe('conda');
    expect(k.spec.display_name).toBe('tf (alice)');
  });

  test('the first shared directory wins', async () => {
    const t = tree();
    const second = path.join(t.root, 'shared2');
    writeKernel(second, 'python3', { json: kernelJson('second') });
    writeKernel(second, 'julia', { json: kernelJson('Julia') });
    const c = makeCatalog({ homeRoot: t.homes, sharedDirs: [t.shared, second] });
    const listing = await c.list(undefined);
    expect(listing.kernelspecs.map((k) => [k.name, k.spec.display_name])).toEqual([
      ['julia', 'Julia'],
      ['python3', 'Python 3 (shared)'],
    ]);
  });
});

describe('bad input hides only itself', () => {
  test('malformed JSON', async () => {
    const t = tree();
    const dir = writeKernel(condaKernelsDir(t.homes, 'alice', 'bad'), 'k', {
      json: '{"argv": ["python"], "display_name": ',
    });
    await othersIntact(t);
    expect(warnedAbout(t, dir)).toBe(true);
  });

  test('missing argv', async () => {
    const t = tree();
    const dir = writeKernel(condaKernelsDir(t.homes, 'alice', 'bad'), 'k', {
      json: { display_name: 'no argv' },
    });
    await othersIntact(t);
    expect(warnedAbout(t, dir)).toBe(true);
    expect(t.log.records.find((r) => JSON.stringify(r.meta).includes(dir))!.meta!.reason).toMatch(/argv/);
  });

  test('empty argv, non-string argv entries, missing display_name, non-string env values', async () => {
    const t = tree();
    const bad = condaKernelsDir(t.homes, 'alice', 'bad');
    writeKernel(bad, 'empty', { json: { argv: [], display_name: 'x' } });
    writeKernel(bad, 'numbers', { json: { argv: ['python', 3], display_name: 'x' } });
    writeKernel(bad, 'noname', { json: { argv: ['python'] } });
    writeKernel(bad, 'envnum', { json: { argv: ['python'], display_name: 'x', env: { A: 1 } } });
    writeKernel(bad, 'array', { json: '[1,2]' });
    writeKernel(bad, 'authnum', {
      json: kernelJson('x', { metadata: { process_proxy: { config: { authorized_users: 7 } } } }),
    });
    await othersIntact(t);
    expect(t.log.records.filter((r) => r.level === 'warn')).toHaveLength(6);
  });

  test('non-UTF-8 kernel.json', async () => {
    const t = tree();
    const bytes = Buffer.concat([
      Buffer.from('{"argv": ["python"], "display_name": "caf'),
      Buffer.from([0xe9, 0xff]),
      Buffer.from('"}'),
    ]);
    const dir = writeKernel(condaKernelsDir(t.homes, 'alice', 'latin1'), 'k', { json: bytes });
    await othersIntact(t);
    expect(t.log.records.find((r) => JSON.stringify(r.meta).includes(dir))!.meta!.reason).toMatch(/UTF-8/);
  });

  test('a 5 MB kernel.json is refused by the 1 MiB cap without being read', async () => {
    const t = tree();
    const big = JSON.stringify(kernelJson('big', { metadata: { padding: 'x'.repeat(5 * 1024 * 1024) } }));
    const dir = writeKernel(condaKernelsDir(t.homes, 'alice', 'big'), 'k', { json: big });
    await othersIntact(t);
    expect(t.log.records.find((r) => JSON.stringify(r.meta).includes(dir))!.meta!.reason).toMatch(/limit/);
  });

  test('a kernel directory that is a symlink to outside the home', async () => {
    const t = tree();
    const outside = writeKernel(path.join(t.root, 'outside'), 'evil', { json: kernelJson('outside') });
    fs.symlinkSync(outside, path.join(localKernelsDir(t.homes, 'alice'), 'evil'));
    await othersIntact(t);
    expect(t.log.records.some((r) => r.level === 'warn' && String(r.meta?.reason).includes('outside'))).toBe(
      true,
    );
  });

  test("a kernel directory that is a symlink into another user's home", async () => {
    const t = tree();
    fs.symlinkSync(
      path.join(condaKernelsDir(t.homes, 'bob', 'bobenv'), 'python3'),
      path.join(localKernelsDir(t.homes, 'alice'), 'stolen'),
    );
    await othersIntact(t);
    await expect(t.catalog.resolve('alice', 'stolen')).rejects.toMatchObject({
      name: 'KernelspecNotFoundError',
    });
  });

  test("a conda env that is a symlink to another user's env, and `.conda` linked outside", async () => {
    const t = tree();
    fs.symlinkSync(
      path.join(t.homes, 'bob', '.conda', 'envs', 'bobenv'),
      path.join(t.homes, 'alice', '.conda', 'envs', 'bobs'),
    );
    await othersIntact(t);
    // Now the whole .conda is a link to bob's: alice loses her conda kernels, bob's never show up.
    fs.renameSync(path.join(t.homes, 'alice', '.conda'), path.join(t.homes, 'alice', '.conda-old'));
    fs.symlinkSync(path.join(t.homes, 'bob', '.conda'), path.join(t.homes, 'alice', '.conda'));
    expect(await names(t.catalog, 'alice')).toEqual(['mykernel', 'python3']);
    expect(await names(t.catalog, 'bob')).toEqual(BOB);
  });

  test('a kernel.json or logo that is a symlink to a file outside the home', async () => {
    const t = tree();
    const secret = path.join(t.root, 'secret.json');
    fs.writeFileSync(secret, JSON.stringify(kernelJson('secret')));
    const dir = path.join(condaKernelsDir(t.homes, 'alice', 'linked'), 'k');
    fs.mkdirSync(dir, { recursive: true });
    fs.symlinkSync(secret, path.join(dir, 'kernel.json'));
    fs.symlinkSync('/etc/passwd', path.join(localKernelsDir(t.homes, 'alice'), 'mykernel', 'logo-64x64.png'));
    await othersIntact(t);
    await expect(t.catalog.resource('alice', 'mykernel', 'logo-64x64.png')).rejects.toMatchObject({
      name: 'KernelspecResourceNotFoundError',
    });
  });

  test('symlinks that stay inside the home are followed', async () => {
    const t = tree();
    const target = writeKernel(path.join(t.homes, 'alice', 'projects', 'kernels'), 'proj', {
      json: kernelJson('proj'),
      logos: true,
    });
    fs.symlinkSync(target, path.join(localKernelsDir(t.homes, 'alice'), 'proj'));
    expect(await names(t.catalog, 'alice')).toEqual([...ALICE, 'proj'].sort());
    expect((await t.catalog.resource('alice', 'proj', 'logo-64x64.png')).contentType).toBe('image/png');
  });

  test("a home that is a symlink to another user's home is refused", async () => {
    const t = tree();
    fs.symlinkSync(path.join(t.homes, 'bob'), path.join(t.homes, 'mallory'));
    expect(await names(t.catalog, 'mallory')).toEqual(['python3']);
    expect(warnedAbout(t, path.join(t.homes, 'mallory'))).toBe(true);
    await othersIntact(t);
  });

  test('a FIFO named kernel.json does not block discovery', async () => {
    const t = tree();
    const dir = path.join(condaKernelsDir(t.homes, 'alice', 'fifo'), 'k');
    fs.mkdirSync(dir, { recursive: true });
    execFileSync('mkfifo', [path.join(dir, 'kernel.json')]);
    await othersIntact(t);
  });

  test('odd directory names are skipped, not exposed', async () => {
    const t = tree();
    writeKernel(localKernelsDir(t.homes, 'alice'), 'has space', { json: kernelJson('x') });
    writeKernel(localKernelsDir(t.homes, 'alice'), '.hidden', { json: kernelJson('x') });
    condaEnv(t.homes, 'alice', 'bad%env');
    fs.writeFileSync(path.join(localKernelsDir(t.homes, 'alice'), 'file-not-dir'), 'x');
    await othersIntact(t);
  });

  describe('user names', () => {
    const bad: Array<[string, string]> = [
      ['..', '..'],
      ['.', '.'],
      ['a/b', 'a/b'],
      ['NUL byte', 'alice\u0000'],
      ['newline', 'alice\n'],
      ['leading whitespace', ' alice'],
      ['trailing whitespace', 'alice '],
      ['empty', ''],
      ['very long (256 bytes)', 'a'.repeat(256)],
      ['very long in bytes (100 × 3-byte chars)', '张'.repeat(100)],
    ];
    test.each(bad)('%s is refused with InvalidUsernameError', async (_label, user) => {
      const t = tree();
      await expect(t.catalog.list(user)).rejects.toBeInstanceOf(InvalidUsernameError);
      await expect(t.catalog.resolve(user, 'python3')).rejects.toBeInstanceOf(InvalidUsernameError);
      await othersIntact(t);
    });

    // Every name JupyterHub accepts, including ones that merely look like paths or escapes.
    test.each(['josé', '张伟', 'alice@example.org', 'a.b-c_d', 'a+b', 'A1', '_svc', 'a'.repeat(255), 'a b', "o'neil", 'ünïcode.user', '%2e%2e', 'alice%00', 'a\\b', '-alice'])(
      '%s is accepted and reads its own home',
      async (user) => {
        const t = tree();
        condaEnv(t.homes, user, 'env1');
        expect(await names(t.catalog, user)).toEqual(['conda-env-env1-python3', 'python3']);
        await othersIntact(t);
      },
    );
  });
});

describe('10,000 environments in one home', () => {
  test('are all listed; first pass and revalidation timed', async () => {
    const root = tmpTree();
    const N = 10_000;
    const body = JSON.stringify(kernelJson('env'));
    for (let i = 0; i < N; i++) {
      const dir = path.join(condaKernelsDir(root, 'hoarder', `env${String(i).padStart(5, '0')}`), 'python3');
      fs.mkdirSync(dir, { recursive: true });
      fs.writeFileSync(path.join(dir, 'kernel.json'), body);
    }
    condaEnv(root, 'neighbour', 'small');
    const index = new KernelspecIndex({ homeRoot: root, ttlMs: 0 });
    const catalog = new KernelspecCatalog({ index });
    let t0 = performance.now();
    const listing = await catalog.list('hoarder');
    const first = performance.now() - t0;
    t0 = performance.now();
    await catalog.list('hoarder');
    const revalidate = performance.now() - t0;
    t0 = performance.now();
    const json = catalog.listingJson(listing);
    const serialize = performance.now() - t0;
    expect(listing.kernelspecs).toHaveLength(N);
    expect(JSON.parse(json).kernelspecs['conda-env-env09999-python3'].spec.display_name).toBe('env');
    expect(await names(catalog, 'neighbour')).toEqual(['conda-env-small-python3']);
    console.log(
      `10,000 envs: first listing ${first.toFixed(0)} ms, revalidation (stat only) ${revalidate.toFixed(0)} ms, serialization ${serialize.toFixed(0)} ms, ${(json.length / 1e6).toFixed(1)} MB JSON`,
    );
    expect(first).toBeLessThan(20_000);
  }, 120_000);
});
