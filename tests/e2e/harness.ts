/**
 * Real peers for end-to-end tests: the spawngate CLI as a child process (so it can be killed) and
 * Debian's JupyterHub 3.0 configured with `spawner_class = "spawngate"`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../support/ports';
import { waitFor } from '../support/wait';

export const ROOT = path.resolve(__dirname, '..', '..');
/** Python with JupyterHub and the installed shim (scripts/setup-python.sh makes it). */
export const HUB_PYTHON = process.env.SPAWNGATE_TEST_PYTHON ?? path.join(ROOT, '.venv-hub', 'bin', 'python');

export { freePort } from '../support/ports';
export { sleep, waitFor } from '../support/wait';

export function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `${prefix}-`));
}

export interface Proc {
  child: ChildProcess;
  /** The last ~200-400 kB of output; the whole output is in `logFile` when one was given. */
  output: () => string;
  logFile?: string;
  /** Resolves with the exit code once the process is gone. */
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export function startProcess(cmd: string, args: string[], opts: { env: NodeJS.ProcessEnv; cwd?: string; logFile?: string }): Proc {
  const child = spawn(cmd, args, { env: opts.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  // The whole output also goes to a file: a failure late in a long test must not have lost its start.
  if (opts.logFile) fs.mkdirSync(path.dirname(opts.logFile), { recursive: true });
  const log = opts.logFile ? fs.openSync(opts.logFile, 'a') : undefined;
  let out = '';
  const keep = (b: Buffer): void => {
    if (log !== undefined) fs.writeSync(log, b);
    out += b.toString();
    if (out.length > 400_000) out = out.slice(-200_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  // 'close' (every pipe closed, which a surviving grandchild can delay) ends the log; 'exit' the process.
  if (log !== undefined) child.on('close', () => fs.closeSync(log));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return {
    child,
    output: () => out,
    logFile: opts.logFile,
    exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill(signal);
      const t = setTimeout(() => child.kill('SIGKILL'), 15000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** A process that did not come up is stopped before the error goes on: nothing is left running. */
async function stopIfFails<T>(proc: Proc, wait: () => Promise<T>): Promise<T> {
  try {
    return await wait();
  } catch (err) {
    await proc.stop();
    throw err;
  }
}

export interface Spawngate extends Proc {
  url: string;
  port: number;
  hubToken: string;
  adminToken: string;
  dataDir: string;
  env: NodeJS.ProcessEnv;
}

export async function startSpawngate(opts: { dataDir?: string; port?: number; env?: NodeJS.ProcessEnv } = {}): Promise<Spawngate> {
  const port = opts.port ?? (await freePort());
  const dataDir = opts.dataDir ?? tmpDir('sg-data');
  const hubToken = 'hub-token-0123456789abcdef';
  const adminToken = 'admin-token-0123456789abcdef';
  const env: NodeJS.ProcessEnv = {
    PATH: `${path.dirname(HUB_PYTHON)}:/usr/bin:/bin:/usr/local/bin`,
    HOME: process.env.HOME,
    SPAWNGATE_PORT: String(port),
    SPAWNGATE_DATA_DIR: dataDir,
    SPAWNGATE_HUB_TOKEN: hubToken,
    SPAWNGATE_ADMIN_TOKEN: adminToken,
    SPAWNGATE_ALLOW_ROOT: process.getuid?.() === 0 ? '1' : '0',
    SPAWNGATE_LOG_LEVEL: 'debug',
    // Functional tests, not identity tests: every workload runs as the test runner (tests/tenancy covers per-user identities).
    SPAWNGATE_LOCAL_SHARED_IDENTITY: '1',
    ...opts.env,
  };
  const proc = startProcess(process.execPath, [path.join(ROOT, 'bin', 'spawngate.js'), 'serve'], { env, cwd: ROOT, logFile: path.join(dataDir, 'spawngate.log') });
  const url = `http://127.0.0.1:${port}`;
  await stopIfFails(proc, () =>
    waitFor(
      'spawngate /healthz',
      async () => {
        if (proc.child.exitCode !== null) throw new Error(`spawngate exited: ${proc.output()}`);
        return (await fetch(`${url}/healthz`)).ok;
      },
      60000,
    ),
  );
  return { ...proc, url, port, hubToken, adminToken, dataDir, env };
}

export interface Hub extends Proc {
  url: string;
  token: string;
  dir: string;
  api<T = unknown>(method: string, p: string, body?: unknown): Promise<{ status: number; body: T }>;
}

export async function startHub(opts: { spawngateUrl: string; hubToken: string; dir?: string; port?: number; hubPort?: number; extraConfig?: string }): Promise<Hub> {
  const dir = opts.dir ?? tmpDir('sg-hub');
  // A restarted hub (same dir) keeps its addresses: running servers call the hub API they were given.
  const portsFile = path.join(dir, 'ports.json');
  const saved = fs.existsSync(portsFile) ? (JSON.parse(fs.readFileSync(portsFile, 'utf8')) as number[]) : [];
  const port = saved[0] ?? opts.port ?? (await freePort());
  const hubPort = saved[1] ?? opts.hubPort ?? (await freePort());
  const apiPort = saved[2] ?? (await freePort());
  fs.writeFileSync(portsFile, JSON.stringify([port, hubPort, apiPort]));
  const token = 'test-service-token-0123456789';
  fs.writeFileSync(
    path.join(dir, 'jupyterhub_config.py'),
    `
c = get_config()  # noqa
c.JupyterHub.ip = '127.0.0.1'
c.JupyterHub.port = ${port}
c.JupyterHub.hub_ip = '127.0.0.1'
c.JupyterHub.hub_port = ${hubPort}
c.ConfigurableHTTPProxy.api_url = 'http://127.0.0.1:${apiPort}'
c.JupyterHub.db_url = 'sqlite:///${dir}/jupyterhub.sqlite'
c.JupyterHub.cookie_secret_file = '${dir}/cookie_secret'
c.ConfigurableHTTPProxy.pid_file = '${dir}/proxy.pid'
c.JupyterHub.authenticator_class = 'dummy'
c.JupyterHub.spawner_class = 'spawngate'
c.JupyterHub.allow_named_servers = True
c.JupyterHub.cleanup_servers = False
c.Spawner.start_timeout = 60
c.Spawner.http_timeout = 30
# The spawn request answers at once (202), so tests can follow the progress stream while it runs.
c.JupyterHub.tornado_settings = {'slow_spawn_timeout': 0}
c.JupyterHub.services = [{'name': 'e2e', 'api_token': '${token}'}]
c.JupyterHub.load_roles = [{'name': 'e2e', 'scopes': ['admin:users', 'admin:servers', 'access:servers', 'read:users', 'read:servers'], 'services': ['e2e']}]
c.RemoteSpawner.service_url = '${opts.spawngateUrl}'
${opts.extraConfig ?? ''}
`,
  );
  const env: NodeJS.ProcessEnv = {
    PATH: `${path.dirname(HUB_PYTHON)}:/usr/bin:/bin`,
    HOME: process.env.HOME,
    NODE_PATH: '/usr/share/nodejs',
    SPAWNGATE_HUB_TOKEN: opts.hubToken,
  };
  const proc = startProcess(HUB_PYTHON, ['-m', 'jupyterhub', '-f', path.join(dir, 'jupyterhub_config.py')], { env, cwd: dir, logFile: path.join(dir, 'jupyterhub.log') });
  const url = `http://127.0.0.1:${port}`;
  const api = async <T>(method: string, p: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${url}/hub/api${p}`, {
      method,
      headers: { Authorization: `token ${token}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as T };
  };
  await stopIfFails(proc, () =>
    waitFor(
      'JupyterHub API',
      async () => {
        if (proc.child.exitCode !== null) throw new Error(`jupyterhub exited: ${proc.output().slice(-3000)}`);
        return (await fetch(`${url}/hub/api`)).ok;
      },
      60000,
      250,
    ),
  );
  return { ...proc, url, token, dir, api };
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
