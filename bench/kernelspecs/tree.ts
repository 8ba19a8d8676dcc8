/**
 * The benchmark's file tree and its peer: N homes of 5 conda environments (kernel.json + logo each),
 * 20 shared kernelspecs, and Debian's jupyter_server 1.23 serving one user's 25 kernelspecs from
 * JUPYTER_PATH (what a single-user server lists without a gateway).
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export const ENVS = ['base-py', 'tf', 'torch', 'r', 'geo'];
const SHARED = 20;
/** Kernelspecs one user sees: 5 own + 20 shared. */
export const PER_USER = ENVS.length + SHARED;
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==',
  'base64',
);

function kernel(dir: string, displayName: string): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(
    path.join(dir, 'kernel.json'),
    JSON.stringify({
      argv: ['python', '-m', 'ipykernel_launcher', '-f', '{connection_file}'],
      display_name: displayName,
      language: 'python',
    }),
  );
  fs.writeFileSync(path.join(dir, 'logo-64x64.png'), PNG);
}

/** Makes sure `root` holds homes `user0 … user<users-1>` and the shared kernelspecs (kept between runs). */
export function generate(root: string, users: number): { homes: string; shared: string } {
  const homes = path.join(root, 'home');
  const shared = path.join(root, 'shared');
  const marker = path.join(root, '.users');
  const have = fs.existsSync(marker) ? Number(fs.readFileSync(marker, 'utf8')) : 0;
  if (have >= users) return { homes, shared };
  const t0 = Date.now();
  // One shared kernelspec is `python3`: in jupyter_server's JUPYTER_PATH it then shadows the system
  // python3 (which kernel_dirs cannot exclude), so both servers list exactly 25.
  for (let s = 0; s < SHARED; s++)
    kernel(path.join(shared, s === 0 ? 'python3' : `shared-${String(s).padStart(2, '0')}`), `Shared ${s}`);
  for (let u = have; u < users; u++) {
    for (const env of ENVS) {
      kernel(path.join(homes, `user${u}`, '.conda', 'envs', env, 'share', 'jupyter', 'kernels', 'python3'), `${env} (user${u})`);
    }
  }
  fs.writeFileSync(marker, String(users));
  console.log(`generated homes ${have}…${users - 1} (${ENVS.length} envs each) in ${((Date.now() - t0) / 1000).toFixed(1)} s at ${root}`);
  return { homes, shared };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

function getStatus(url: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

/**
 * Starts jupyter_server 1.23 with user0's 25 kernelspecs copied into a JUPYTER_PATH entry. Undefined
 * when jupyter_server is not installed (`apt-get install -y python3-jupyter-server python3-ipykernel`).
 */
export async function startJupyterServer(
  root: string,
  homes: string,
  shared: string,
): Promise<{ url: string; token: string; pid: number | undefined; stop: () => void } | undefined> {
  const py = '/usr/bin/python3';
  if (spawnSync(py, ['-c', 'import jupyter_server'], { stdio: 'ignore' }).status !== 0) return undefined;
  const jp = path.join(root, 'jupyter-path');
  const kernels = path.join(jp, 'kernels');
  fs.rmSync(jp, { recursive: true, force: true });
  fs.mkdirSync(kernels, { recursive: true });
  for (const env of ENVS) {
    fs.cpSync(
      path.join(homes, 'user0', '.conda', 'envs', env, 'share', 'jupyter', 'kernels', 'python3'),
      path.join(kernels, `conda-env-${env}-python3`),
      { recursive: true },
    );
  }
  for (const name of fs.readdirSync(shared)) fs.cpSync(path.join(shared, name), path.join(kernels, name), { recursive: true });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-bench-js-'));
  const port = await freePort();
  const token = 'bench-jupyter-token-0123456789';
  const args = [
    '-m',
    'jupyter_server',
    '--no-browser',
    '--ServerApp.ip=127.0.0.1',
    `--ServerApp.port=${port}`,
    `--ServerApp.token=${token}`,
    `--ServerApp.root_dir=${dir}`,
    '--KernelSpecManager.ensure_native_kernel=False',
    '--ServerApp.log_level=WARN',
  ];
  if (process.getuid?.() === 0) args.push('--allow-root');
  const child = spawn(py, args, {
    env: {
      PATH: '/usr/bin:/bin',
      HOME: dir,
      JUPYTER_PATH: jp,
      JUPYTER_CONFIG_DIR: path.join(dir, 'c'),
      JUPYTER_DATA_DIR: path.join(dir, 'd'),
      JUPYTER_RUNTIME_DIR: path.join(dir, 'r'),
    },
    stdio: 'ignore',
  });
  const stop = (): void => {
    child.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const url = `http://127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      const r = await getStatus(`${url}/api/kernelspecs`, { Authorization: `token ${token}` });
      const listed = r.status === 200 ? Object.keys(JSON.parse(r.body).kernelspecs).length : -1;
      if (listed === PER_USER) return { url, token, pid: child.pid, stop };
      throw new Error(`jupyter_server answered ${r.status} with ${listed} kernelspecs, expected ${PER_USER}`);
    } catch (err) {
      if (i > 300 || !(err as NodeJS.ErrnoException).code) {
        stop();
        throw err;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}
