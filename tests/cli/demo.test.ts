/**
 * `npm run demo` (spawngate alone: SPAWNGATE_DEMO_NO_HUB=1) prints where everything is, and every command
 * it prints (`$ …` lines) works as printed against the running demo. Its token files are private.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { freshDataDir, waitGone } from './embedded-support';

jest.setTimeout(120_000);

const ROOT = path.resolve(__dirname, '..', '..');

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

test("the demo's banner names URLs and token files, and its printed commands work", async () => {
  const dir = freshDataDir('demo');
  const port = await freePort();
  const demo = spawn('bash', ['scripts/demo.sh'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, SPAWNGATE_DATA_DIR: dir, SPAWNGATE_PORT: String(port), SPAWNGATE_DEMO_NO_HUB: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let out = '';
  demo.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  demo.stderr!.resume();
  const exited = new Promise((r) => demo.once('exit', r));
  try {
    const deadline = Date.now() + 60_000;
    while (!/Administer it[\s\S]*\/api\/admin\/experiments/.test(out) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(out).toContain(`spawngate:   http://127.0.0.1:${port}`);
    expect(out).toContain(`hub token:   ${dir}/hub-token`);
    expect(out).toContain(`admin token: ${dir}/admin-token`);
    for (const f of ['hub-token', 'admin-token']) expect(fs.statSync(path.join(dir, f)).mode & 0o777).toBe(0o600);
    const commands = out.split('\n').filter((l) => l.startsWith('  $ ')).map((l) => l.slice(4));
    expect(commands).toHaveLength(3);
    const results = commands.map((c) => spawnSync('bash', ['-c', c], { cwd: '/', encoding: 'utf8', timeout: 30_000 }));
    for (const [i, r] of results.entries()) expect({ command: commands[i], status: r.status, stderr: r.stderr }).toEqual({ command: commands[i], status: 0, stderr: '' });
    expect(results[0]!.stdout).toMatch(/username \| active[\s\S]*\(0 rows\)/);
    expect(results[2]!.stdout.trim().startsWith('{') || results[2]!.stdout.trim().startsWith('[')).toBe(true);
    const page = await fetch(`http://127.0.0.1:${port}/`, { headers: { Accept: 'text/html' } });
    expect(await page.text()).toContain('href="/api/docs/"');
  } finally {
    process.kill(-demo.pid!, 'SIGTERM');
    await exited;
    expect(await waitGone(path.dirname(dir))).toEqual([]);
    fs.rmSync(path.dirname(dir), { recursive: true, force: true });
  }
});
