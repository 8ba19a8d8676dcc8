/**
 * The real client: Debian's jupyter_server 1.23 (`/usr/bin/python3 -m jupyter_server`) configured only
 * with JUPYTER_GATEWAY_URL, JUPYTER_GATEWAY_AUTH_TOKEN and KERNEL_USERNAME, talking to the kernelspec
 * router. Its own `/api/kernelspecs` must return exactly that user's set, `/api/kernelspecs/{name}`
 * each of them (jupyter_server asks for those as `/api/kernelspecs?user=<user>/<name>`), and kernel
 * logos must load through its `/kernelspecs/{name}/{file}`.
 *
 * The gateway here is a minimal express app (token → identity map, the router, EG-shaped errors);
 * it is meant to be switched to the real app (`createApp`) once authentication lands.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import type { Identity } from '../../src/spawner-api';
import { freePort } from '../support/ports';
import {
  condaEnv,
  condaKernelsDir,
  gatewayApp,
  kernelJson,
  localKernelsDir,
  makeCatalog,
  PNG,
  removeTrees,
  tmpTree,
  writeKernel,
} from './helpers';

const PYTHON = '/usr/bin/python3';
const hasJupyterServer =
  fs.existsSync(PYTHON) &&
  spawnSync(PYTHON, ['-c', 'import jupyter_server'], { stdio: 'ignore' }).status === 0;
const describeIf = hasJupyterServer ? describe : describe.skip;
if (!hasJupyterServer) {
  console.warn(
    'skipped: Debian jupyter_server missing (apt-get install -y python3-jupyter-server python3-ipykernel)',
  );
}

const tokens: Record<string, Identity> = {
  'alice-gateway-token-0123456789': { kind: 'user', username: 'alice' },
  'bob-gateway-token-0123456789': { kind: 'user', username: 'bob' },
};

interface Listing {
  default: string;
  kernelspecs: Record<
    string,
    { name: string; spec: Record<string, unknown>; resources: Record<string, string> }
  >;
}

interface JupyterServer {
  url: string;
  token: string;
  child: ChildProcess;
  output(): string;
  get(p: string): Promise<Response>;
  stop(): Promise<void>;
}

async function startJupyterServer(env: {
  JUPYTER_GATEWAY_URL: string;
  JUPYTER_GATEWAY_AUTH_TOKEN: string;
  KERNEL_USERNAME: string;
}): Promise<JupyterServer> {
  const dir = tmpTree('sg-js');
  const port = await freePort();
  const token = 'jupyter-server-token-0123456789';
  const args = [
    '-m',
    'jupyter_server',
    '--no-browser',
    '--ServerApp.ip=127.0.0.1',
    `--ServerApp.port=${port}`,
    `--ServerApp.token=${token}`,
    `--ServerApp.root_dir=${dir}`,
  ];
  if (process.getuid?.() === 0) args.push('--allow-root');
  const child = spawn(PYTHON, args, {
    env: {
      PATH: '/usr/bin:/bin',
      HOME: dir,
      JUPYTER_CONFIG_DIR: path.join(dir, 'config'),
      JUPYTER_DATA_DIR: path.join(dir, 'data'),
      JUPYTER_RUNTIME_DIR: path.join(dir, 'runtime'),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<void>((r) => child.on('exit', () => r()));
  const url = `http://127.0.0.1:${port}`;
  const get = (p: string): Promise<Response> =>
    fetch(`${url}${p}`, { headers: { Authorization: `token ${token}` } });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`jupyter_server exited:\n${out}`);
    try {
      if ((await get('/api/status')).ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`jupyter_server did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    token,
    child,
    output: () => out,
    get,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t);
      }
    },
  };
}

describeIf("Debian jupyter_server 1.23 as the gateway's client", () => {
  let gateway: http.Server;
  let gatewayUrl: string;
  const seen: string[] = [];
  let homes: string;
  const servers: JupyterServer[] = [];

  beforeAll(async () => {
    const root = tmpTree();
    homes = path.join(root, 'home');
    const shared = path.join(root, 'shared');
    condaEnv(homes, 'alice', 'tf');
    condaEnv(homes, 'alice', 'torch', 'python3', { metadata: { spawngate: { environment: 'torch-gpu' } } });
    condaEnv(homes, 'alice', 'r', 'ir', { language: 'R' });
    writeKernel(localKernelsDir(homes, 'alice'), 'mine', { json: kernelJson('Mine'), js: true });
    condaEnv(homes, 'bob', 'bobenv');
    writeKernel(shared, 'python3', { json: kernelJson('Python 3 (shared)'), logos: true });
    writeKernel(shared, 'spark', {
      json: kernelJson('Spark', { metadata: { process_proxy: { config: { authorized_users: 'bob' } } } }),
      logos: true,
    });
    const app = gatewayApp(
      makeCatalog({ homeRoot: homes, sharedDirs: [shared], policy: { defaultKernel: 'python3' } }),
      tokens,
    );
    gateway = http.createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      app(req, res);
    });
    await new Promise<void>((r) => gateway.listen(0, '127.0.0.1', r));
    gatewayUrl = `http://127.0.0.1:${(gateway.address() as net.AddressInfo).port}`;
  });

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await new Promise((r) => gateway?.close(r));
    removeTrees();
  });

  const start = async (user: string, token: string): Promise<JupyterServer> => {
    const s = await startJupyterServer({
      JUPYTER_GATEWAY_URL: gatewayUrl,
      JUPYTER_GATEWAY_AUTH_TOKEN: token,
      KERNEL_USERNAME: user,
    });
    servers.push(s);
    return s;
  };

  test("lists exactly alice's kernelspecs, serves each one and its logos", async () => {
    const js = await start('alice', 'alice-gateway-token-0123456789');
    const direct = (await (
      await fetch(`${gatewayUrl}/api/kernelspecs`, {
        headers: { Authorization: 'token alice-gateway-token-0123456789' },
      })
    ).json()) as Listing;
    const expected = ['conda-env-r-ir', 'conda-env-tf-python3', 'conda-env-torch-python3', 'mine', 'python3'];
    expect(Object.keys(direct.kernelspecs)).toEqual(expected);

    await js.get('/api/kernelspecs'); // the first answer carries jupyter_server's own default; it adopts the gateway's for the next
    const res = await js.get('/api/kernelspecs');
    expect(res.status).toBe(200);
    const listing = (await res.json()) as Listing;
    expect(Object.keys(listing.kernelspecs).sort()).toEqual(expected);
    expect(listing.default).toBe('python3');
    expect(listing.kernelspecs).toEqual(direct.kernelspecs);
    expect(seen).toContain('GET /api/kernelspecs?user=alice');

    for (const name of expected) {
      const one = await js.get(`/api/kernelspecs/${name}`);
      expect([name, one.status]).toEqual([name, 200]);
      expect(await one.json()).toEqual(direct.kernelspecs[name]);
      // jupyter_server 1.23 appends the name to the URL that already carries ?user=
      expect(seen).toContain(`GET /api/kernelspecs?user=alice/${name}`);
    }
    expect((await js.get('/api/kernelspecs/nope')).status).toBe(404);
    expect((await js.get('/api/kernelspecs/conda-env-bobenv-python3')).status).toBe(404);

    let logos = 0;
    for (const model of Object.values(direct.kernelspecs)) {
      for (const [key, url] of Object.entries(model.resources)) {
        expect(url.startsWith(`/kernelspecs/${model.name}/`)).toBe(true);
        const r = await js.get(url);
        expect([url, r.status]).toEqual([url, 200]);
        const body = Buffer.from(await r.arrayBuffer());
        // jupyter_server 1.23's APIHandler.finish() relabels every proxied resource as
        // application/json, so content types are checked on the gateway's own answer.
        const ownType = (
          await fetch(`${gatewayUrl}${url}`, {
            headers: { Authorization: 'token alice-gateway-token-0123456789' },
          })
        ).headers.get('content-type');
        if (key === 'logo-64x64' || key === 'logo-32x32') {
          expect(ownType).toBe('image/png');
          expect(Buffer.compare(body, PNG)).toBe(0);
          logos++;
        }
        if (key === 'logo-svg') expect(ownType).toBe('image/svg+xml');
        if (key === 'kernel.js') {
          expect(ownType).toMatch(/^text\/javascript/);
          expect(body.toString()).toContain('define(');
        }
      }
    }
    expect(logos).toBe(8); // 3 conda kernels + shared python3, 2 PNG logos each
    expect(seen).toContain('GET /kernelspecs/conda-env-tf-python3/logo-64x64.png');
    // Logos of kernelspecs alice cannot see do not load through her server.
    const spark = await js.get('/kernelspecs/spark/logo-64x64.png');
    expect(Buffer.from(await spark.arrayBuffer()).includes(PNG)).toBe(false);
    expect(seen).toContain('GET /kernelspecs/spark/logo-64x64.png');
  }, 90_000);

  test("a new environment in alice's home shows up through jupyter_server within 2 s", async () => {
    const js = servers[0] ?? (await start('alice', 'alice-gateway-token-0123456789'));
    condaEnv(homes, 'alice', 'brandnew');
    const t0 = Date.now();
    let found = false;
    while (!found && Date.now() - t0 < 5000) {
      found =
        'conda-env-brandnew-python3' in
        ((await (await js.get('/api/kernelspecs')).json()) as Listing).kernelspecs;
      if (!found) await new Promise((r) => setTimeout(r, 50));
    }
    expect(found).toBe(true);
    expect(Date.now() - t0).toBeLessThan(2000);
    fs.rmSync(path.join(condaKernelsDir(homes, 'alice', 'brandnew'), '..', '..', '..'), { recursive: true });
  }, 30_000);

  test("bob's server lists bob's set; a token used with someone else's KERNEL_USERNAME gets 403", async () => {
    const bob = await start('bob', 'bob-gateway-token-0123456789');
    const listing = (await (await bob.get('/api/kernelspecs')).json()) as Listing;
    expect(Object.keys(listing.kernelspecs).sort()).toEqual(['conda-env-bobenv-python3', 'python3', 'spark']);
    const spark = await bob.get('/kernelspecs/spark/logo-64x64.png');
    expect(spark.status).toBe(200);
    const mixed = await start('alice', 'bob-gateway-token-0123456789');
    expect((await mixed.get('/api/kernelspecs')).status).toBe(403);
  }, 90_000);
});
