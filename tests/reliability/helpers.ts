/**
 * Shared set-up for the reliability tests: real spawngate CLI processes (`serve`, `serve --no-workers`,
 * `worker`) on a per-test Postgres database and, where needed, a throwaway redis-server; a home tree
 * with real ipykernel kernelspecs; a quota granted by admin SQL; and /proc inspection to count the
 * processes of a kernel. The CLI runs from dist/: `npm run build` first.
 *
 * Every kernel a test starts carries `KERNEL_TEST_TAG=<tag>` in its environment (KERNEL_* variables
 * reach kernels), so the test can find every process it caused — and prove none is left behind.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { createTestPostgres, type TestPostgres } from '../db/helpers';
import { ROOT, startProcess, tmpDir, type Proc } from '../e2e/harness';
import { freePort } from '../support/ports';
import { startRedisServer, type RedisServer } from '../support/redis-server';
import { sleep, waitFor } from '../support/wait';

export { freePort, sleep, waitFor };

export const PYTHON = '/usr/bin/python3';

// ——— Redis ———

/** A throwaway redis-server without persistence (tests/support); `port` given to restart one on the same port. */
export const startRedis = (port?: number): Promise<RedisServer> => startRedisServer(port);
export type { RedisServer };

// ——— Home tree and kernelspecs ———

/**
 * `<homes>/alice/.conda/envs/tf/share/jupyter/kernels/{python3,slow}`: `conda-env-tf-python3` is plain
 * ipykernel; `conda-env-tf-slow` sleeps 3 s in a shell before exec'ing the same (a slow launch).
 */
export function makeHomes(): string {
  const homes = tmpDir('sg-rel-homes');
  const base = path.join(homes, 'alice', '.conda', 'envs', 'tf', 'share', 'jupyter', 'kernels');
  const spec = (name: string, argv: string[]): void => {
    fs.mkdirSync(path.join(base, name), { recursive: true });
    fs.writeFileSync(path.join(base, name, 'kernel.json'), JSON.stringify({ argv, display_name: name, language: 'python' }));
  };
  spec('python3', [PYTHON, '-m', 'ipykernel_launcher', '-f', '{connection_file}']);
  spec('slow', ['/bin/sh', '-c', `sleep 3; exec ${PYTHON} -m ipykernel_launcher -f {connection_file}`]);
  return homes;
}

export const GRANT_SQL = `
  INSERT INTO users (username) VALUES ('alice');
  INSERT INTO experiments (name, cpu_request, cpu_limit, memory_request_mib, memory_limit_mib) VALUES ('genomics', 0.5, 2, 512, 4096);
  INSERT INTO environments (name, experiment_id) SELECT 'tf', id FROM experiments WHERE name = 'genomics';
  INSERT INTO experiment_members (experiment_id, user_id) SELECT e.id, u.id FROM experiments e, users u WHERE e.name = 'genomics' AND u.username = 'alice';
`;

// ——— spawngate processes ———

export type Role = 'serve' | 'api' | 'worker';

export interface Node extends Proc {
  role: Role;
  url?: string;
  port?: number;
}

export interface ClusterOptions {
  /** Start a throwaway Redis (and point SPAWNGATE_REDIS_URL at it). */
  redis?: boolean;
  /** Override the database URL spawngate processes use (e.g. a proxy in front of Postgres). */
  databaseUrl?: (direct: string) => string;
  /** Extra environment for every spawngate process. */
  env?: NodeJS.ProcessEnv;
}

export class Cluster {
  readonly tag = randomBytes(6).toString('hex');
  readonly adminToken = 'admin-token-0123456789abcdef';
  readonly hubToken = 'hub-token-0123456789abcdef';
  readonly nodes: Node[] = [];
  pg!: TestPostgres;
  redis?: RedisServer;
  homes!: string;
  dataDir!: string;
  env!: NodeJS.ProcessEnv;
  /** alice's gateway token. */
  token!: string;

  private constructor(private readonly opts: ClusterOptions) {}

  static async create(opts: ClusterOptions = {}): Promise<Cluster> {
    const c = new Cluster(opts);
    await c.init();
    return c;
  }

  private async init(): Promise<void> {
    this.pg = await createTestPostgres();
    if (this.opts.redis) this.redis = await startRedis();
    this.homes = makeHomes();
    this.dataDir = tmpDir('sg-rel-data');
    this.env = {
      PATH: '/usr/local/bin:/usr/bin:/bin',
      HOME: process.env.HOME,
      SPAWNGATE_DATA_DIR: this.dataDir,
      SPAWNGATE_DATABASE_URL: this.opts.databaseUrl ? this.opts.databaseUrl(this.pg.url) : this.pg.url,
      SPAWNGATE_HOME_ROOT: this.homes,
      // Functional tests, not identity tests: every workload runs as the test runner (tests/tenancy covers per-user identities).
      SPAWNGATE_LOCAL_SHARED_IDENTITY: '1',
      SPAWNGATE_HUB_TOKEN: this.hubToken,
      SPAWNGATE_ADMIN_TOKEN: this.adminToken,
      // Several processes share connection keys: one key for all (it would be generated otherwise).
      SPAWNGATE_SECRET_KEY: randomBytes(32).toString('base64'),
      SPAWNGATE_LOG_LEVEL: 'debug',
      ...(this.redis ? { SPAWNGATE_REDIS_URL: this.redis.url } : {}),
      ...this.opts.env,
    };
    execFileSync(process.execPath, [path.join(ROOT, 'bin', 'spawngate.js'), 'migrate'], { env: { ...this.env, SPAWNGATE_DATABASE_URL: this.pg.url } });
    await this.pg.db.query(GRANT_SQL);
    this.token = execFileSync(process.execPath, [path.join(ROOT, 'bin', 'spawngate.js'), 'token', '--user', 'alice'], {
      env: { ...this.env, SPAWNGATE_DATABASE_URL: this.pg.url },
    })
      .toString()
      .trim();
  }

  /** Starts `spawngate serve` (role serve), `serve --no-workers` (api) or `worker`, resolved once ready. */
  async start(role: Role, extraEnv: NodeJS.ProcessEnv = {}): Promise<Node> {
    const args = role === 'worker' ? ['worker'] : role === 'api' ? ['serve', '--no-workers'] : ['serve'];
    const port = role === 'worker' ? undefined : await freePort();
    const env = { ...this.env, ...extraEnv, ...(port ? { SPAWNGATE_PORT: String(port) } : {}) };
    const proc = startProcess(process.execPath, [path.join(ROOT, 'bin', 'spawngate.js'), ...args], { env, cwd: ROOT });
    const node: Node = { ...proc, role, port, url: port ? `http://127.0.0.1:${port}` : undefined };
    this.nodes.push(node);
    await waitFor(
      `spawngate ${args.join(' ')} ready`,
      async () => {
        if (proc.child.exitCode !== null) throw new Error(`spawngate ${role} exited: ${proc.output().slice(-3000)}`);
        if (role === 'worker') return proc.output().includes('spawngate worker running');
        return (await fetch(`${node.url}/healthz`)).ok;
      },
      30_000,
      100,
    );
    return node;
  }

  /** Gateway HTTP call as alice (or with `token`); never waits longer than `timeoutMs`. */
  async api<T = Record<string, unknown>>(
    node: Node | string,
    method: string,
    p: string,
    body?: unknown,
    opts: { timeoutMs?: number; token?: string } = {},
  ): Promise<{ status: number; body: T; ms: number }> {
    const base = typeof node === 'string' ? node : node.url!;
    const started = Date.now();
    const res = await fetch(`${base}${p}`, {
      method,
      headers: { Authorization: `token ${opts.token ?? this.token}`, 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(opts.timeoutMs ?? 120_000),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      // keep the text
    }
    return { status: res.status, body: parsed as T, ms: Date.now() - started };
  }

  /** POST /api/kernels body for alice's kernelspec, tagged so its processes can be found. */
  launchBody(kernel = 'conda-env-tf-python3', env: Record<string, string> = {}): { name: string; env: Record<string, string> } {
    return { name: kernel, env: { KERNEL_USERNAME: 'alice', KERNEL_TEST_TAG: this.tag, ...env } };
  }

  /** Starts a kernel and expects 201; returns its id. */
  async launch(node: Node, kernel = 'conda-env-tf-python3'): Promise<string> {
    const res = await this.api<{ id: string }>(node, 'POST', '/api/kernels', this.launchBody(kernel));
    if (res.status !== 201) throw new Error(`launch answered ${res.status}: ${JSON.stringify(res.body)}\n${this.logs()}`);
    return res.body.id;
  }

  wsUrl(node: Node, kernelId: string, sessionId?: string): string {
    return `${node.url!.replace('http', 'ws')}/api/kernels/${kernelId}/channels${sessionId ? `?session_id=${sessionId}` : ''}`;
  }

  /**
   * Opens the kernel's channels websocket as alice; by default waits until the bridge's iopub
   * subscription is live (`settle`), `{ settle: false }` sends the first cell straight away.
   */
  async connect(node: Node, kernelId: string, sessionId?: string, opts: { settle?: boolean } = {}): Promise<KernelSocket> {
    const ws = await KernelSocket.open(this.wsUrl(node, kernelId, sessionId), { Authorization: `token ${this.token}` }, sessionId);
    if (opts.settle ?? true) await ws.settle();
    return ws;
  }

  /** Local-backend records (`<data dir>/local/*.json`) of this kernel. */
  records(kernelId: string): Array<{ name: string; pid: number; exit?: unknown; labels: Record<string, string> }> {
    const dir = path.join(this.dataDir, 'local');
    if (!fs.existsSync(dir)) return [];
    return fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as { name: string; pid: number; exit?: unknown; labels: Record<string, string> })
      .filter((r) => r.labels?.kernel_id === kernelId);
  }

  /** Live processes caused by this test (any kernel, including shells and `sleep` of a slow launch). */
  taggedProcesses(): ProcInfo[] {
    return liveProcesses().filter((p) => p.environ.includes(`KERNEL_TEST_TAG=${this.tag}`));
  }

  /** Live processes of one kernel (its KERNEL_ID in the environment). */
  kernelProcesses(kernelId: string): ProcInfo[] {
    return liveProcesses().filter((p) => p.environ.includes(`KERNEL_ID=${kernelId}`));
  }

  /** The last lines of every spawngate process's output, for failure messages. */
  logs(lines = 40): string {
    return this.nodes
      .map((n, i) => `--- ${n.role} #${i} (pid ${n.child.pid}) ---\n${n.output().split('\n').slice(-lines).join('\n')}`)
      .join('\n');
  }

  /** Shuts down every kernel through any live API, stops processes, kills leftovers, drops the database. */
  async close(): Promise<void> {
    const api = this.nodes.find((n) => n.url && n.child.exitCode === null && n.child.signalCode === null);
    if (api) {
      try {
        const list = await this.api<Array<{ id: string }>>(api, 'GET', '/api/kernels', undefined, { timeoutMs: 5000 });
        if (Array.isArray(list.body)) for (const k of list.body) await this.api(api, 'DELETE', `/api/kernels/${k.id}`, undefined, { timeoutMs: 15_000 }).catch(() => undefined);
      } catch {
        // best effort; leftovers are killed below
      }
    }
    await Promise.all(this.nodes.map((n) => n.stop('SIGTERM')));
    for (const p of this.taggedProcesses()) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await this.redis?.stop();
    await this.pg?.drop();
    fs.rmSync(this.dataDir, { recursive: true, force: true });
    fs.rmSync(this.homes, { recursive: true, force: true });
  }
}

// ——— /proc ———

export interface ProcInfo {
  pid: number;
  cmdline: string;
  environ: string;
}

/** Processes that exist and are not zombies, with their command line and environment (own user's only). */
export function liveProcesses(): ProcInfo[] {
  const out: ProcInfo[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
      if (state === 'Z' || state === 'X') continue;
      out.push({
        pid: Number(entry),
        cmdline: fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim(),
        environ: fs.readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').join('\n'),
      });
    } catch {
      // exited meanwhile, or not ours
    }
  }
  return out;
}

export function alive(pid: number): boolean {
  return liveProcesses().some((p) => p.pid === pid);
}

// ——— Jupyter websocket client ———

export interface Msg {
  header: { msg_type: string; msg_id: string; session?: string };
  parent_header: { msg_id?: string };
  content: Record<string, unknown>;
  channel: string;
}

/** A channels websocket that records every message, with a session id of its own. */
export class KernelSocket {
  readonly messages: Msg[] = [];
  closed = false;
  closeCode?: number;

  private constructor(
    readonly ws: WebSocket,
    readonly session: string,
  ) {
    ws.on('message', (data) => {
      try {
        this.messages.push(JSON.parse(data.toString()) as Msg);
      } catch {
        // binary frames are not used by these tests
      }
    });
    ws.on('close', (code) => {
      this.closed = true;
      this.closeCode = code;
    });
    ws.on('error', () => undefined);
  }

  static open(url: string, headers: Record<string, string>, session = `sess-${randomBytes(6).toString('hex')}`): Promise<KernelSocket> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, { headers });
      const timer = setTimeout(() => {
        ws.terminate();
        reject(new Error(`websocket ${url} did not open within 10 s`));
      }, 10_000);
      ws.once('open', () => {
        clearTimeout(timer);
        resolve(new KernelSocket(ws, session));
      });
      ws.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      ws.once('unexpected-response', (_req, res) => {
        clearTimeout(timer);
        reject(new Error(`upgrade refused: ${res.statusCode}`));
      });
    });
  }

  /** Sends an execute_request and returns its msg_id (the reply is not awaited). */
  send(code: string): string {
    const msgId = `exec-${randomBytes(6).toString('hex')}`;
    this.ws.send(
      JSON.stringify({
        header: { msg_id: msgId, msg_type: 'execute_request', username: 'alice', session: this.session, date: new Date().toISOString(), version: '5.3' },
        parent_header: {},
        metadata: {},
        content: { code, silent: false, store_history: false, user_expressions: {}, allow_stdin: false },
        channel: 'shell',
      }),
    );
    return msgId;
  }

  /**
   * Client-side "nudge" (what jupyter_client's wait_for_ready does): kernel_info_request until one of
   * its iopub messages arrives, proving the bridge's iopub subscription is live. The bridge now does
   * this itself before it accepts a websocket (api-restart.test.ts checks that without settling);
   * tests about something else settle anyway, so a regression there fails only that test.
   */
  async settle(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const msgId = `info-${randomBytes(6).toString('hex')}`;
      this.ws.send(
        JSON.stringify({
          header: { msg_id: msgId, msg_type: 'kernel_info_request', username: 'alice', session: this.session, date: new Date().toISOString(), version: '5.3' },
          parent_header: {},
          metadata: {},
          content: {},
          channel: 'shell',
        }),
      );
      const until = Math.min(deadline, Date.now() + 1_000);
      while (Date.now() < until) {
        if (this.messages.some((m) => m.channel === 'iopub' && m.parent_header?.msg_id === msgId)) return;
        if (this.closed) throw new Error(`websocket closed (${this.closeCode}) while settling`);
        await sleep(20);
      }
    }
    throw new Error(`no iopub message from the kernel within ${timeoutMs} ms`);
  }

  /** Runs `code`; resolves with stdout, the execute_result texts and the reply once the kernel is idle again. */
  async execute(code: string, timeoutMs = 20_000): Promise<{ stdout: string; results: string[]; reply: Msg }> {
    const msgId = this.send(code);
    return this.result(msgId, timeoutMs);
  }

  /** The outcome of an execute_request sent with `send`. */
  async result(msgId: string, timeoutMs = 20_000): Promise<{ stdout: string; results: string[]; reply: Msg }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const mine = this.messages.filter((m) => m.parent_header?.msg_id === msgId);
      const reply = mine.find((m) => m.header.msg_type === 'execute_reply');
      const idle = mine.some((m) => m.header.msg_type === 'status' && m.content.execution_state === 'idle');
      if (reply && idle) {
        return {
          reply,
          stdout: mine.filter((m) => m.header.msg_type === 'stream').map((m) => String(m.content.text)).join(''),
          results: mine.filter((m) => m.header.msg_type === 'execute_result').map((m) => String((m.content.data as Record<string, string>)['text/plain'])),
        };
      }
      if (this.closed) throw new Error(`websocket closed (${this.closeCode}) before the reply to ${msgId}`);
      if (Date.now() > deadline) {
        const got = mine.map((m) => `${m.channel}:${m.header.msg_type}`).join(', ') || 'nothing';
        throw new Error(`no execute_reply plus idle status for ${msgId} within ${timeoutMs} ms (got: ${got})`);
      }
      await sleep(20);
    }
  }

  /** Resolves once an iopub `status` with this execution state arrives (after `since` messages). */
  async waitForStatus(state: string, timeoutMs: number, since = 0): Promise<number> {
    const started = Date.now();
    for (;;) {
      if (this.messages.slice(since).some((m) => m.channel === 'iopub' && m.header.msg_type === 'status' && m.content.execution_state === state)) return Date.now() - started;
      if (Date.now() - started > timeoutMs) throw new Error(`no iopub status '${state}' within ${timeoutMs} ms`);
      await sleep(20);
    }
  }

  close(): void {
    this.ws.close();
  }
}
