/**
 * Child process of bench/kernels/concurrent.ts: holds the benchmark's websocket clients so that their
 * memory and file descriptors are not counted as the service's. Protocol on stdin/stdout, one JSON
 * line each:
 *   in  {"open": [{"url": …, "token": …}, …]}  → out {"open": n, "failed": [messages]}
 *   in  {"exec": "1+1"}                         → out {"ok": n, "failed": [messages]}   (on every socket)
 *   in  {"close": true} (or stdin closed)       → closes every socket and exits
 */
import { createInterface } from 'node:readline';
import type WebSocket from 'ws';
import { connectWs, execute } from '../../tests/support/jupyter-ws';

const sockets: WebSocket[] = [];
const say = (o: unknown): void => void process.stdout.write(`${JSON.stringify(o)}\n`);

async function settle<T>(
  items: T[],
  fn: (item: T) => Promise<void>,
): Promise<{ ok: number; failed: string[] }> {
  const results = await Promise.allSettled(items.map(fn));
  const failed = results
    .filter((r): r is PromiseRejectedResult => r.status === 'rejected')
    .map((r) => String((r.reason as Error)?.message ?? r.reason));
  return { ok: results.length - failed.length, failed };
}

function closeAll(): void {
  for (const ws of sockets) ws.close();
  setTimeout(() => process.exit(0), 500).unref();
}

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const cmd = JSON.parse(line) as { open?: { url: string; token: string }[]; exec?: string; close?: boolean };
  if (cmd.open) {
    void settle(cmd.open, async ({ url, token }) => {
      const ws = await connectWs(url, { Authorization: `token ${token}` });
      ws.on('error', () => undefined);
      sockets.push(ws);
    }).then(({ ok, failed }) => say({ open: ok, failed }));
  } else if (cmd.exec !== undefined) {
    const code = cmd.exec;
    void settle(sockets, async (ws) => {
      const r = await execute(ws, code, 60_000);
      if (r.reply.content.status !== 'ok')
        throw new Error(`execute_reply status ${String(r.reply.content.status)}`);
    }).then(({ ok, failed }) => say({ ok, failed }));
  } else if (cmd.close) {
    closeAll();
  }
});
rl.on('close', closeAll);
