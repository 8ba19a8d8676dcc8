/**
 * Harness for the channels bridge tests and benchmark: a real ipykernel (Debian's
 * /usr/bin/python3) started on a connection file we write, a tiny http+ws server that attaches
 * websockets to a `KernelClient`, and a websocket test client speaking the Jupyter protocol.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import winston from 'winston';
import { WebSocket, WebSocketServer } from 'ws';
import { freePorts } from '../support/ports';
import {
  KernelClient,
  kernelWebSocketServerOptions,
  serializeBinaryMessage,
  V1_SUBPROTOCOL,
  type KernelConnectionInfo,
  type KernelClientOptions,
} from '../../src/kernels/channels';

export const SYSTEM_PYTHON = '/usr/bin/python3';

export { freePorts } from '../support/ports';

export async function newConnectionInfo(
  key = randomBytes(32).toString('hex'),
): Promise<KernelConnectionInfo> {
  const [shell, iopub, stdin, control, hb] = (await freePorts(5)) as [number, number, number, number, number];
  return {
    ip: '127.0.0.1',
    transport: 'tcp',
    shell_port: shell,
    iopub_port: iopub,
    stdin_port: stdin,
    control_port: control,
    hb_port: hb,
    key,
    signature_scheme: 'hmac-sha256',
    kernel_name: 'python3',
  };
}

export interface KernelProcess {
  info: KernelConnectionInfo;
  proc: ChildProcess;
  pid: number;
  /** Resolves when the process has exited. */
  exited: Promise<number | null>;
  /** Kills the process (SIGKILL) and removes its directory. Idempotent. */
  kill(): Promise<void>;
}

/** Starts `/usr/bin/python3 -m ipykernel_launcher -f <file>` on fresh ports and a random key. */
export async function startKernel(info?: KernelConnectionInfo): Promise<KernelProcess> {
  const conn = info ?? (await newConnectionInfo());
  const dir = mkdtempSync(join(tmpdir(), 'spawngate-kernel-'));
  const file = join(dir, 'kernel.json');
  writeFileSync(file, JSON.stringify(conn), { mode: 0o600 });
  const proc = spawn(SYSTEM_PYTHON, ['-m', 'ipykernel_launcher', '-f', file], {
    stdio: ['ignore', 'ignore', process.env.SPAWNGATE_TEST_KERNEL_STDERR ? 'inherit' : 'ignore'],
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: dir,
      IPYTHONDIR: join(dir, 'ipython'),
      JUPYTER_RUNTIME_DIR: join(dir, 'runtime'),
      JUPYTER_CONFIG_DIR: join(dir, 'config'),
      JUPYTER_PLATFORM_DIRS: '1',
      PYDEVD_DISABLE_FILE_VALIDATION: '1',
    },
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  let killed = false;
  return {
    info: conn,
    proc,
    pid: proc.pid!,
    exited,
    async kill() {
      if (!killed) {
        killed = true;
        if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
        await exited;
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

/** A tiny http+ws server: `/channels?session_id=…` attaches the websocket to `client`. */
export interface BridgeServer {
  url: string;
  server: Server;
  close(): Promise<void>;
}

export async function startBridgeServer(client: KernelClient, port = 0): Promise<BridgeServer> {
  const server = createServer((_req, res) => res.writeHead(404).end());
  const wss = new WebSocketServer({ server, ...kernelWebSocketServerOptions() });
  wss.on('connection', (ws, req) => {
    const url = new URL(req.url ?? '/', 'http://x');
    client.attach(ws, { sessionId: url.searchParams.get('session_id') ?? undefined });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const addr = server.address() as import('node:net').AddressInfo;
  return {
    url: `ws://127.0.0.1:${addr.port}/channels`,
    server,
    async close() {
      for (const ws of wss.clients) ws.terminate();
      await new Promise((r) => wss.close(r));
      await new Promise((r) => server.close(r));
    },
  };
}

export interface WsMessage {
  channel: string;
  header: { msg_id: string; msg_type: string; session: string; [k: string]: unknown };
  parent_header: { msg_id?: string; msg_type?: string; session?: string; [k: string]: unknown };
  metadata: Record<string, unknown>;
  content: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  buffers?: Buffer[];
  msg_id?: string;
  msg_type?: string;
  binary?: boolean;
}

/** A Jupyter websocket client (legacy protocol, like the browser and jupyter_server's gateway client). */
export class TestClient {
  readonly messages: WsMessage[] = [];
  private waiters = new Set<() => void>();
  closed: Promise<void>;

  private constructor(
    readonly ws: WebSocket,
    readonly session: string,
  ) {
    // Listen before 'open' resolves: a reconnecting session's replayed messages come right away.
    ws.on('message', (data: Buffer, isBinary) => {
      let msg: WsMessage;
      if (isBinary) {
        msg = deserializeBinary(data);
        msg.binary = true;
      } else msg = JSON.parse(data.toString('utf8')) as WsMessage;
      this.messages.push(msg);
      for (const w of [...this.waiters]) w();
    });
    this.closed = new Promise((resolve) => ws.once('close', () => resolve()));
  }

  static async connect(
    baseUrl: string,
    opts: { sessionId?: string | null; headers?: Record<string, string> } = {},
  ): Promise<TestClient> {
    const session = opts.sessionId ?? randomUUID();
    const url =
      opts.sessionId === null
        ? baseUrl
        : `${baseUrl}${baseUrl.includes('?') ? '&' : '?'}session_id=${session}`;
    const ws = new WebSocket(url, { perMessageDeflate: false, headers: opts.headers });
    const client = new TestClient(ws, session);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return client;
  }

  /** Sends a request and returns its msg_id. */
  send(
    msgType: string,
    content: Record<string, unknown>,
    channel = 'shell',
    buffers?: Buffer[],
    parent: Record<string, unknown> = {},
  ): string {
    const msgId = randomUUID();
    const msg = {
      header: {
        msg_id: msgId,
        msg_type: msgType,
        username: 'test',
        session: this.session,
        date: new Date().toISOString(),
        version: '5.3',
      },
      parent_header: parent,
      metadata: {},
      content,
      channel,
    };
    if (buffers && buffers.length > 0) this.ws.send(serializeBinaryMessage({ ...msg, buffers }));
    else this.ws.send(JSON.stringify({ ...msg, buffers: [] }));
    return msgId;
  }

  execute(code: string, extra: Record<string, unknown> = {}): string {
    return this.send('execute_request', {
      code,
      silent: false,
      store_history: true,
      user_expressions: {},
      allow_stdin: true,
      stop_on_error: true,
      ...extra,
    });
  }

  /** Messages whose parent is `msgId`. */
  childrenOf(msgId: string): WsMessage[] {
    return this.messages.filter((m) => m.parent_header?.msg_id === msgId);
  }

  /** Resolves with the first message (from now on or already received) matching `pred`. */
  waitFor(pred: (m: WsMessage) => boolean, timeoutMs = 10_000, what = 'message'): Promise<WsMessage> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const m = this.messages.find(pred);
        if (m) {
          this.waiters.delete(check as () => void);
          clearTimeout(timer);
          resolve(m);
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        this.waiters.delete(check as () => void);
        reject(
          new Error(
            `timed out after ${timeoutMs} ms waiting for ${what}; got ${this.messages.map((m) => `${m.channel}:${m.header.msg_type}`).join(', ')}`,
          ),
        );
      }, timeoutMs);
      if (!check()) this.waiters.add(check as () => void);
    });
  }

  /** Waits for the execute_reply and the iopub idle status of a request. */
  async finished(msgId: string, timeoutMs = 10_000): Promise<{ reply: WsMessage; outputs: WsMessage[] }> {
    const reply = await this.waitFor(
      (m) =>
        m.channel === 'shell' && m.parent_header?.msg_id === msgId && m.header.msg_type.endsWith('_reply'),
      timeoutMs,
      `reply to ${msgId}`,
    );
    await this.waitFor(
      (m) =>
        m.channel === 'iopub' &&
        m.parent_header?.msg_id === msgId &&
        m.header.msg_type === 'status' &&
        m.content.execution_state === 'idle',
      timeoutMs,
      `idle after ${msgId}`,
    );
    return { reply, outputs: this.childrenOf(msgId).filter((m) => m.channel === 'iopub') };
  }

  async close(): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return;
    this.ws.close();
    await this.closed;
  }
}

function deserializeBinary(data: Buffer): WsMessage {
  const nbufs = data.readUInt32BE(0);
  const offsets = Array.from({ length: nbufs }, (_, i) => data.readUInt32BE(4 * (i + 1)));
  const parts = offsets.map((start, i) => data.subarray(start, i + 1 < nbufs ? offsets[i + 1] : data.length));
  const msg = JSON.parse(parts[0]!.toString('utf8')) as WsMessage;
  msg.buffers = parts.slice(1).map((b) => Buffer.from(b));
  return msg;
}

export { V1_SUBPROTOCOL };

/** Starts a kernel and a `KernelClient` for it and waits for kernel_info. */
export async function startClient(
  opts: Partial<KernelClientOptions> = {},
): Promise<{ kernel: KernelProcess; client: KernelClient }> {
  const kernel = await startKernel();
  const client = new KernelClient({ connection: kernel.info, kernelId: randomUUID(), ...opts });
  try {
    await client.kernelInfo(30_000);
  } catch (err) {
    await client.close();
    await kernel.kill();
    throw err;
  }
  return { kernel, client };
}

/** A winston logger that keeps each record's final JSON line (after spawngate's redaction format). */
export function memoryLogger(): { logger: winston.Logger; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  });
  const logger = winston.createLogger({
    level: 'debug',
    format: winston.format.json(),
    transports: [new winston.transports.Stream({ stream })],
  });
  return { logger, lines };
}
