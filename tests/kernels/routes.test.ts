/**
 * The kernelspec routes in-process (supertest) behind a fake token → identity middleware: shapes and
 * status codes as Enterprise Gateway / jupyter_server, who may act for whom, jupyter_server's
 * `?user=<user>/<name>` quirk, resources with content types, and no traversal through the URL.
 */
import fs from 'node:fs';
import path from 'node:path';
import request from 'supertest';
import type { Identity } from '../../src/spawner-api';
import {
  condaEnv,
  condaKernelsDir,
  gatewayApp,
  kernelJson,
  localKernelsDir,
  makeCatalog,
  PNG,
  removeTrees,
  SVG,
  tmpTree,
  writeKernel,
} from './helpers';

afterAll(removeTrees);

const tokens: Record<string, Identity> = {
  'alice-token': { kind: 'user', username: 'alice' },
  'bob-token': { kind: 'user', username: 'bob' },
  'admin-token': { kind: 'admin' },
  'hub-token': { kind: 'hub' },
};
const auth = (t: string): [string, string] => ['Authorization', `token ${t}`];

function setup() {
  const root = tmpTree();
  const homes = path.join(root, 'home');
  const shared = path.join(root, 'shared');
  condaEnv(homes, 'alice', 'tf');
  writeKernel(localKernelsDir(homes, 'alice'), 'mine', { json: kernelJson('Mine'), js: true });
  condaEnv(homes, 'bob', 'bobenv');
  condaEnv(homes, 'a+b', 'plus');
  writeKernel(shared, 'python3', { json: kernelJson('Python 3'), logos: true });
  writeKernel(shared, 'spark', {
    json: kernelJson('Spark', { metadata: { process_proxy: { config: { authorized_users: 'alice' } } } }),
  });
  fs.writeFileSync(path.join(root, 'secret.txt'), 'TOP-SECRET-CONTENT');
  const catalog = makeCatalog({
    homeRoot: homes,
    sharedDirs: [shared],
    policy: { defaultKernel: 'python3' },
  });
  return { app: gatewayApp(catalog, tokens), homes, root };
}

describe('GET /api/kernelspecs', () => {
  test('no token: 401 JSON', async () => {
    const { app } = setup();
    const res = await request(app).get('/api/kernelspecs');
    expect(res.status).toBe(401);
    expect(res.body).toEqual({ reason: 'Unauthorized', message: 'missing or invalid token' });
  });

  test("a user token lists exactly that user's kernelspecs, in EG's shape", async () => {
    const { app } = setup();
    const res = await request(app)
      .get('/api/kernelspecs')
      .set(...auth('alice-token'));
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(Object.keys(res.body)).toEqual(['default', 'kernelspecs']);
    expect(res.body.default).toBe('python3');
    expect(Object.keys(res.body.kernelspecs)).toEqual(['conda-env-tf-python3', 'mine', 'python3', 'spark']);
    expect(res.body.kernelspecs.python3).toEqual({
      name: 'python3',
      spec: {
        argv: ['python', '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
        display_name: 'Python 3',
        language: 'python',
        env: {},
        metadata: {},
        interrupt_mode: 'signal',
      },
      resources: {
        'logo-32x32': '/kernelspecs/python3/logo-32x32.png',
        'logo-64x64': '/kernelspecs/python3/logo-64x64.png',
        'logo-svg': '/kernelspecs/python3/logo-svg.svg',
      },
    });
  });

  test('?user= naming oneself is fine; naming someone else with a user token is 403', async () => {
    const { app } = setup();
    expect(
      (
        await request(app)
          .get('/api/kernelspecs?user=alice')
          .set(...auth('alice-token'))
      ).status,
    ).toBe(200);
    const res = await request(app)
      .get('/api/kernelspecs?user=bob')
      .set(...auth('alice-token'));
    expect(res.status).toBe(403);
    expect(res.body.reason).toBe('Forbidden');
    expect(res.body.message).toMatch(/alice.*bob/);
  });

  test('the admin token acts for the named user; naming nobody it sees the unrestricted shared kernelspecs', async () => {
    const { app } = setup();
    for (const t of ['admin-token']) {
      const bob = await request(app)
        .get('/api/kernelspecs?user=bob')
        .set(...auth(t));
      expect(Object.keys(bob.body.kernelspecs)).toEqual(['conda-env-bobenv-python3', 'python3']);
      const none = await request(app)
        .get('/api/kernelspecs')
        .set(...auth(t));
      expect(Object.keys(none.body.kernelspecs)).toEqual(['python3']);
    }
  });

  test('the hub token is refused on the gateway (403) with a message pointing at the user or admin token', async () => {
    const { app } = setup();
    for (const url of ['/api/kernelspecs?user=bob', '/api/kernelspecs', '/api/kernelspecs/python3']) {
      const res = await request(app)
        .get(url)
        .set(...auth('hub-token'));
      expect(res.status).toBe(403);
      expect(res.body.message).toMatch(/hub token.*user's gateway token or the admin token/);
    }
  });

  test("jupyter_server's single-spec URL `/api/kernelspecs?user=<user>/<name>` answers that one model", async () => {
    const { app } = setup();
    const res = await request(app)
      .get('/api/kernelspecs?user=alice/conda-env-tf-python3')
      .set(...auth('alice-token'));
    expect(res.status).toBe(200);
    expect(res.body.name).toBe('conda-env-tf-python3');
    expect(res.body.spec.display_name).toBe('tf (alice)');
    const missing = await request(app)
      .get('/api/kernelspecs?user=alice/nope')
      .set(...auth('alice-token'));
    expect(missing.status).toBe(404);
    expect(missing.body).toEqual({ reason: 'Not Found', message: 'Kernel spec nope not found' });
    expect(
      (
        await request(app)
          .get('/api/kernelspecs?user=bob/python3')
          .set(...auth('alice-token'))
      ).status,
    ).toBe(403);
  });

  test('bad user names are 400 whatever the encoding; `+` and a stray `%` are kept (jupyter_server sends names unescaped)', async () => {
    const { app } = setup();
    for (const q of [
      '..',
      '%2e%2e',
      'alice%00',
      'alice%0a',
      '..%2Fpython3',
      '%20alice',
      'x'.repeat(300),
      '%E5%BC%A0'.repeat(100),
    ]) {
      const res = await request(app)
        .get(`/api/kernelspecs?user=${q}`)
        .set(...auth('admin-token'));
      expect([q, res.status]).toEqual([q, 400]);
      expect(res.body.reason).toBe('Bad Request');
    }
    expect(
      (
        await request(app)
          .get('/api/kernelspecs?user=%zz')
          .set(...auth('admin-token'))
      ).status,
    ).toBe(200); // the user `%zz`: a `%` starting no escape stays itself
    // Names JupyterHub accepts that merely look like paths or escapes: `%2e%2e` (sent encoded once more) and `a\b`.
    for (const q of ['%252e%252e', 'a%5Cb', '50%off']) {
      expect([q, (await request(app).get(`/api/kernelspecs?user=${q}`).set(...auth('admin-token'))).status]).toEqual([q, 200]);
    }
    const plus = await request(app)
      .get('/api/kernelspecs?user=a+b')
      .set(...auth('admin-token'));
    expect(Object.keys(plus.body.kernelspecs)).toEqual(['conda-env-plus-python3', 'python3']);
    const unicode = await request(app)
      .get(`/api/kernelspecs?user=${encodeURIComponent('josé')}`)
      .set(...auth('admin-token'));
    expect(unicode.status).toBe(200);
  });
});

describe('GET /api/kernelspecs/{name}', () => {
  test('returns the model; unknown is 404, not authorized is 403 (as EG)', async () => {
    const { app } = setup();
    const ok = await request(app)
      .get('/api/kernelspecs/conda-env-tf-python3')
      .set(...auth('alice-token'));
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({
      name: 'conda-env-tf-python3',
      resources: { 'logo-64x64': '/kernelspecs/conda-env-tf-python3/logo-64x64.png' },
    });
    const unknown = await request(app)
      .get('/api/kernelspecs/nope')
      .set(...auth('alice-token'));
    expect(unknown.status).toBe(404);
    expect(unknown.body).toEqual({ reason: 'Not Found', message: 'Kernel spec nope not found' });
    const forbidden = await request(app)
      .get('/api/kernelspecs/spark')
      .set(...auth('bob-token'));
    expect(forbidden.status).toBe(403);
    expect(forbidden.body).toEqual({
      reason: 'Forbidden',
      message: 'User bob is not authorized to use kernel spec spark',
    });
  });

  test("another user's kernelspec is simply not found", async () => {
    const { app } = setup();
    expect(
      (
        await request(app)
          .get('/api/kernelspecs/conda-env-bobenv-python3')
          .set(...auth('alice-token'))
      ).status,
    ).toBe(404);
    expect(
      (
        await request(app)
          .get('/api/kernelspecs/conda-env-bobenv-python3?user=bob')
          .set(...auth('admin-token'))
      ).status,
    ).toBe(200);
  });

  test('names outside the kernelspec alphabet are 404', async () => {
    const { app } = setup();
    for (const n of ['..%2F..%2Fetc', '%2e%2e', 'a%00', 'x'.repeat(300)]) {
      expect(
        (
          await request(app)
            .get(`/api/kernelspecs/${n}`)
            .set(...auth('alice-token'))
        ).status,
      ).toBe(404);
    }
  });
});

describe('GET /kernelspecs/{name}/{resource}', () => {
  test('serves logos, svg, kernel.js/css and kernel.json with their content types', async () => {
    const { app } = setup();
    const png = await request(app)
      .get('/kernelspecs/conda-env-tf-python3/logo-64x64.png')
      .set(...auth('alice-token'))
      .buffer(true);
    expect(png.status).toBe(200);
    expect(png.headers['content-type']).toBe('image/png');
    expect(Buffer.compare(png.body as Buffer, PNG)).toBe(0);
    expect(png.headers['x-content-type-options']).toBe('nosniff');
    const svg = await request(app)
      .get('/kernelspecs/python3/logo-svg.svg')
      .set(...auth('alice-token'));
    expect(svg.headers['content-type']).toBe('image/svg+xml');
    expect(svg.headers['content-security-policy']).toContain('sandbox');
    expect(svg.text ?? (svg.body as Buffer).toString()).toBe(SVG);
    const js = await request(app)
      .get('/kernelspecs/mine/kernel.js')
      .set(...auth('alice-token'));
    expect(js.headers['content-type']).toMatch(/^text\/javascript/);
    const css = await request(app)
      .get('/kernelspecs/mine/kernel.css')
      .set(...auth('alice-token'));
    expect(css.headers['content-type']).toMatch(/^text\/css/);
    const json = await request(app)
      .get('/kernelspecs/python3/kernel.json')
      .set(...auth('bob-token'));
    expect(json.status).toBe(200);
    expect(json.body.display_name).toBe('Python 3');
    const head = await request(app)
      .head('/kernelspecs/python3/logo-64x64.png')
      .set(...auth('bob-token'));
    expect(head.status).toBe(200);
    expect(head.headers['content-length']).toBe(String(PNG.length));
  });

  test('missing files, other users’ kernels and unauthorized kernels are refused', async () => {
    const { app } = setup();
    const missing = await request(app)
      .get('/kernelspecs/mine/logo-64x64.png')
      .set(...auth('alice-token'));
    expect(missing.status).toBe(404);
    expect(missing.body.reason).toBe('Not Found');
    expect(
      (
        await request(app)
          .get('/kernelspecs/conda-env-bobenv-python3/logo-64x64.png')
          .set(...auth('alice-token'))
      ).status,
    ).toBe(404);
    expect(
      (
        await request(app)
          .get('/kernelspecs/spark/kernel.json')
          .set(...auth('bob-token'))
      ).status,
    ).toBe(403);
    expect(
      (
        await request(app)
          .get('/kernelspecs/python3/logo-64x64.png?user=bob')
          .set(...auth('alice-token'))
      ).status,
    ).toBe(403);
    expect((await request(app).get('/kernelspecs/python3/logo-64x64.png')).status).toBe(401);
  });

  test('no path traversal through the resource or the name', async () => {
    const { app, homes } = setup();
    fs.mkdirSync(path.join(condaKernelsDir(homes, 'alice', 'tf'), 'python3', 'sub'));
    fs.writeFileSync(path.join(condaKernelsDir(homes, 'alice', 'tf'), 'python3', 'sub', 'f.txt'), 'x');
    for (const p of [
      '/kernelspecs/python3/..%2F..%2F..%2Fsecret.txt',
      '/kernelspecs/python3/%2e%2e%2fsecret.txt',
      '/kernelspecs/python3/%2e%2e',
      '/kernelspecs/python3/.%2e',
      '/kernelspecs/python3/..%5c..%5csecret.txt',
      '/kernelspecs/python3/kernel.json%00.png',
      '/kernelspecs/..%2F..%2Fsecret.txt/x',
      '/kernelspecs/%2e%2e/secret.txt',
      '/kernelspecs/conda-env-tf-python3/sub%2Ff.txt',
      '/kernelspecs/python3/../../secret.txt',
    ]) {
      const res = await request(app)
        .get(p)
        .set(...auth('alice-token'));
      expect([p, res.status]).toEqual([p, 404]);
      expect(res.text ?? '').not.toContain('TOP-SECRET-CONTENT');
    }
  });
});
