/**
 * Authorization: EG's `authorized_users` / `unauthorized_users` (strings or arrays, whole names), the
 * configuration's allowed/denied kernels and users, the no-user (admin/hub) view, the default kernel.
 */
import fs from 'node:fs';
import { loadConfig } from '../../src/config';
import {
  createKernelspecCatalog,
  isAuthorizedFor,
  parseKernelJson,
  PolicyRules,
  type KernelspecPolicy,
} from '../../src/kernels';
import { condaEnv, kernelJson, makeCatalog, names, removeTrees, tmpTree, writeKernel } from './helpers';

afterAll(removeTrees);

const access = (config: Record<string, unknown>) =>
  parseKernelJson(Buffer.from(JSON.stringify(kernelJson('x', { metadata: { process_proxy: { config } } }))));

describe('EG per-kernelspec lists', () => {
  test('comma-separated string, whole-name match (no substring match)', () => {
    const k = access({ authorized_users: 'alice, bob,carol' });
    expect(isAuthorizedFor(k, 'alice')).toBe(true);
    expect(isAuthorizedFor(k, 'bob')).toBe(true);
    expect(isAuthorizedFor(k, 'carol')).toBe(true);
    expect(isAuthorizedFor(k, 'ali')).toBe(false); // EG: 'ali' in 'alice, bob,carol' is True — not copied
    expect(isAuthorizedFor(k, 'b')).toBe(false);
    expect(isAuthorizedFor(k, 'dave')).toBe(false);
  });

  test('arrays work the same', () => {
    const k = access({ authorized_users: ['alice'], unauthorized_users: ['mallory'] });
    expect(isAuthorizedFor(k, 'alice')).toBe(true);
    expect(isAuthorizedFor(k, 'alic')).toBe(false);
  });

  test('unauthorized_users wins over authorized_users', () => {
    const k = access({ authorized_users: 'alice,bob', unauthorized_users: 'bob' });
    expect(isAuthorizedFor(k, 'alice')).toBe(true);
    expect(isAuthorizedFor(k, 'bob')).toBe(false);
  });

  test('unauthorized_users alone denies only those named (whole names)', () => {
    const k = access({ unauthorized_users: 'bob' });
    expect(isAuthorizedFor(k, 'bob')).toBe(false);
    expect(isAuthorizedFor(k, 'bobby')).toBe(true);
    expect(isAuthorizedFor(k, 'alice')).toBe(true);
  });

  test('an empty authorized_users (string or array) restricts nobody, as in EG', () => {
    expect(isAuthorizedFor(access({ authorized_users: '' }), 'anyone')).toBe(true);
    expect(isAuthorizedFor(access({ authorized_users: [] }), 'anyone')).toBe(true);
    expect(isAuthorizedFor(access({ authorized_users: ' , ' }), 'anyone')).toBe(true);
  });

  test('no user (admin/hub token naming nobody): only kernelspecs not restricted to named users', () => {
    expect(isAuthorizedFor(access({}), undefined)).toBe(true);
    expect(isAuthorizedFor(access({ unauthorized_users: 'bob' }), undefined)).toBe(true);
    expect(isAuthorizedFor(access({ authorized_users: 'alice' }), undefined)).toBe(false);
  });
});

describe('configuration rules', () => {
  test('allowed/denied kernels with * wildcards; denied wins', () => {
    const r = new PolicyRules({
      allowedKernels: ['python3', 'conda-env-*'],
      deniedKernels: ['conda-env-bad-*'],
    });
    expect(r.kernelNameAllowed('python3')).toBe(true);
    expect(r.kernelNameAllowed('conda-env-tf-python3')).toBe(true);
    expect(r.kernelNameAllowed('conda-env-bad-python3')).toBe(false);
    expect(r.kernelNameAllowed('julia')).toBe(false);
    expect(r.kernelNameAllowed('python3x')).toBe(false);
    expect(new PolicyRules({ deniedKernels: ['a.b'] }).kernelNameAllowed('axb')).toBe(true); // '.' is literal
  });

  test('allowed/denied users gate the gateway as a whole', () => {
    const r = new PolicyRules({ allowedUsers: ['alice', 'bob'], deniedUsers: ['bob'] });
    expect(r.userAllowed('alice')).toBe(true);
    expect(r.userAllowed('bob')).toBe(false);
    expect(r.userAllowed('carol')).toBe(false);
    expect(new PolicyRules({}).userAllowed('anyone')).toBe(true);
  });
});

describe('catalogue', () => {
  function setup(policy: KernelspecPolicy = {}) {
    const root = tmpTree();
    const homes = `${root}/home`;
    const shared = `${root}/shared`;
    condaEnv(homes, 'alice', 'tf');
    condaEnv(homes, 'bob', 'bobenv');
    condaEnv(homes, 'alice', 'own', 'k', {
      metadata: { process_proxy: { config: { authorized_users: 'somebody-else' } } },
    });
    writeKernel(shared, 'python3', { json: kernelJson('Python 3') });
    writeKernel(shared, 'spark', {
      json: kernelJson('Spark', { metadata: { process_proxy: { config: { authorized_users: 'alice' } } } }),
    });
    writeKernel(shared, 'r', {
      json: kernelJson('R', { metadata: { process_proxy: { config: { unauthorized_users: ['alice'] } } } }),
    });
    return makeCatalog({ homeRoot: homes, sharedDirs: [shared], policy, ttlMs: 0 });
  }

  test('each user sees the shared kernelspecs authorized for them plus their own', async () => {
    const c = setup();
    expect(await names(c, 'alice')).toEqual(['conda-env-tf-python3', 'python3', 'spark']);
    expect(await names(c, 'bob')).toEqual(['conda-env-bobenv-python3', 'python3', 'r']);
    expect(await names(c, undefined)).toEqual(['python3', 'r']);
  });

  test('a listed-but-unauthorized name answers 403 (EG), an unknown one 404', async () => {
    const c = setup();
    await expect(c.resolve('bob', 'spark')).rejects.toMatchObject({
      name: 'KernelspecForbiddenError',
      message: 'User bob is not authorized to use kernel spec spark',
    });
    await expect(c.resolve('alice', 'conda-env-own-k')).rejects.toMatchObject({
      name: 'KernelspecForbiddenError',
    });
    await expect(c.resolve('bob', 'conda-env-tf-python3')).rejects.toMatchObject({
      name: 'KernelspecNotFoundError',
    });
    await expect(c.resolve(undefined, 'spark')).rejects.toMatchObject({ name: 'KernelspecForbiddenError' });
    await expect(c.resolve(undefined, 'conda-env-tf-python3')).rejects.toMatchObject({
      name: 'KernelspecNotFoundError',
    });
  });

  test('configuration: denied kernels vanish (404), allowed_kernels limits, denied users get 403', async () => {
    const c = setup({
      deniedKernels: ['python3'],
      allowedKernels: ['python3', 'spark', 'conda-env-*'],
      deniedUsers: ['bob'],
    });
    expect(await names(c, 'alice')).toEqual(['conda-env-tf-python3', 'spark']);
    await expect(c.resolve('alice', 'python3')).rejects.toMatchObject({ name: 'KernelspecNotFoundError' });
    await expect(c.list('bob')).rejects.toMatchObject({ name: 'GatewayUserDeniedError' });
    await expect(c.resolve('bob', 'python3')).rejects.toMatchObject({ name: 'GatewayUserDeniedError' });
    const only = setup({ allowedUsers: ['alice'] });
    await expect(only.list('bob')).rejects.toMatchObject({ name: 'GatewayUserDeniedError' });
    expect(await names(only, 'alice')).toHaveLength(3);
  });

  test('default kernel: configured if visible, else python3, else first visible, else configured', async () => {
    expect((await setup({ defaultKernel: 'spark' }).list('alice')).default).toBe('spark');
    expect((await setup({ defaultKernel: 'spark' }).list('bob')).default).toBe('python3');
    expect((await setup({ defaultKernel: 'spark', deniedKernels: ['python3'] }).list('bob')).default).toBe(
      'conda-env-bobenv-python3',
    );
    const empty = makeCatalog({ homeRoot: tmpTree(), policy: { defaultKernel: 'spark' } });
    expect((await empty.list('nobody')).default).toBe('spark');
    expect((await makeCatalog({ homeRoot: tmpTree() }).list('nobody')).default).toBe('python3');
  });
});

describe('createKernelspecCatalog(config)', () => {
  test('reads SPAWNGATE_HOME_ROOT, SPAWNGATE_SHARED_KERNELS and the kernels: block', async () => {
    const root = tmpTree();
    const homes = `${root}/home`;
    condaEnv(homes, 'alice', 'tf');
    writeKernel(`${root}/s1`, 'python3', { json: kernelJson('Python 3') });
    writeKernel(`${root}/s2`, 'julia', { json: kernelJson('Julia') });
    writeKernel(`${root}/s2`, 'secret', { json: kernelJson('Secret') });
    const yaml = `${root}/spawngate.yaml`;
    fs.writeFileSync(
      yaml,
      'kernels:\n  default_kernel: julia\n  denied_kernels: [secret]\n  denied_users: [mallory]\n',
    );
    const config = loadConfig({
      SPAWNGATE_HOME_ROOT: homes,
      SPAWNGATE_SHARED_KERNELS: `${root}/s1:${root}/s2`,
      SPAWNGATE_CONFIG: yaml,
    });
    const catalog = createKernelspecCatalog(config);
    const listing = await catalog.list('alice');
    expect(listing.default).toBe('julia');
    expect(listing.kernelspecs.map((k) => k.name)).toEqual(['conda-env-tf-python3', 'julia', 'python3']);
    await expect(catalog.list('mallory')).rejects.toMatchObject({ name: 'GatewayUserDeniedError' });
  });
});
