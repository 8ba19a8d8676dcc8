/**
 * Throwaway redis-server processes for tests that stop, pause or restart Redis (never the machine's
 * own Redis on 6379): no persistence, bound to 127.0.0.1, started on a free port unless given one.
 * `stop()` kills it and waits for the exit; test files call it in afterAll/finally so none is left.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { freePort } from './ports';
import { waitFor } from './wait';

const REDIS_SERVER = process.env.REDIS_SERVER_BIN ?? '/usr/bin/redis-server';

export interface RedisServer {
  port: number;
  url: string;
  child: ChildProcess;
  /** Kills the server (SIGKILL, also when SIGSTOPped) and resolves once it has exited. Idempotent. */
  stop(): Promise<void>;
}

/** True if something on `port` answers a raw PING with +PONG. */
export function pong(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('data', (chunk) => done(chunk.toString().startsWith('+PONG')));
    socket.once('connect', () => socket.write('PING\r\n'));
  });
}

/** Kills a child process and waits for its exit (no-op if it already exited). */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}

/** Starts a redis-server and resolves once it answers PING (10 s at most). */
export async function startRedisServer(port?: number): Promise<RedisServer> {
  const p = port ?? (await freePort());
  const child = spawn(REDIS_SERVER, ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  try {
    await waitFor(`redis-server on ${p}`, () => pong(p), 10_000, 50);
  } catch (err) {
    await stopChild(child);
    throw err;
  }
  return { port: p, url: `redis://127.0.0.1:${p}`, child, stop: () => stopChild(child) };
}
