/** A reading Jupyter websocket client in its own Node process, for tests and benches that measure spawngate's memory. */
import { spawn } from 'node:child_process';

/**
 * A reading client in a child process (so its own parsing does not count in this process's RSS, which
 * is spawngate's): on `start()` it runs `code` on the kernel websocket at `url` and resolves with the
 * stdout bytes it received and the reply's status.
 */
export function childReader(url: string, token: string, code: string): { attached: Promise<void>; start(): void; result: Promise<{ stdout: number; status: string }> } {
  const script = `
    const WebSocket = require('ws');
    const ws = new WebSocket(process.env.URL, { headers: { Authorization: 'token ' + process.env.TOKEN } });
    let stdout = 0, status, idle = false;
    ws.on('open', () => {
      process.stdout.write('open\\n');
      process.stdin.once('data', () => ws.send(JSON.stringify({
        header: { msg_id: 'child-run', msg_type: 'execute_request', session: 'child', date: new Date().toISOString(), version: '5.3' },
        parent_header: {}, metadata: {}, channel: 'shell',
        content: { code: process.env.CODE, silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: true },
      })));
    });
    ws.on('message', (data) => {
      const m = JSON.parse(data.toString());
      if (m.parent_header.msg_id !== 'child-run') return;
      if (m.header.msg_type === 'stream') stdout += m.content.text.length;
      if (m.header.msg_type === 'execute_reply') status = m.content.status;
      if (m.header.msg_type === 'status' && m.content.execution_state === 'idle') idle = true;
      if (status && idle) { process.stdout.write(JSON.stringify({ stdout, status }) + '\\n'); ws.close(); }
    });
    ws.on('close', (code) => { if (!status) process.stdout.write(JSON.stringify({ closed: code }) + '\\n'); process.exit(0); });
  `;
  const child = spawn(process.execPath, ['-e', script], {
    cwd: process.cwd(),
    env: { ...process.env, NODE_OPTIONS: '', URL: url, TOKEN: token, CODE: code },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let out = '';
  let opened!: () => void;
  const attached = new Promise<void>((resolve, reject) => {
    opened = resolve;
    child.once('exit', () => reject(new Error(`reader exited before connecting: ${JSON.stringify(out.slice(0, 200))}`)));
  });
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.startsWith('open\n')) opened();
  });
  const result = new Promise<{ stdout: number; status: string }>((resolve, reject) =>
    child.once('exit', () => {
      const last = out.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(last) as { stdout: number; status: string });
      } catch {
        reject(new Error(`reader printed ${JSON.stringify(out.slice(0, 200))}`));
      }
    }),
  );
  return { attached, result, start: () => void child.stdin.write('go\n') };
}
