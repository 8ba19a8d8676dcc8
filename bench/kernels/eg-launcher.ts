/**
 * Issue 14 figure: kernel start through an Enterprise-Gateway-style launcher (tests/eg/eg_launcher.py:
 * response-address handshake, RSA + AES, its own ports) vs spawngate's own (`ipykernel_launcher -f
 * {connection_file}`), same in-process service (local backend), same run, interleaved. A start is
 * `POST /api/kernels` → first output of `print(1)` over the kernel websocket; each kernel is shut down
 * (not timed) before the next.
 *
 *   npx tsx bench/kernels/eg-launcher.ts    (env N=10 rounds, WARMUP=1 round not counted)
 */
import fs from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { connectWs } from '../../tests/support/jupyter-ws';
import { firstOutput, KERNEL_NAME, percentile, startSpawngate, SYSTEM_PYTHON } from './common';

const N = Number(process.env.N ?? 10);
const WARMUP = Number(process.env.WARMUP ?? 1);
const EG_KERNEL = 'conda-env-tf-python_eg';

async function main(): Promise<void> {
  const sg = await startSpawngate({ users: ['bench'] });
  const dir = path.join(sg.root, 'homes', 'bench', '.conda', 'envs', 'tf', 'share', 'jupyter', 'kernels', 'python_eg');
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(path.join(__dirname, '..', '..', 'tests', 'eg', 'eg_launcher.py'), path.join(dir, 'eg_launcher.py'));
  const argv = [SYSTEM_PYTHON, '{resource_dir}/eg_launcher.py', '--kernel-id', '{kernel_id}', '--port-range', '{port_range}', '--response-address', '{response_address}', '--public-key', '{public_key}', '--resource-dir', '{resource_dir}', '{connection_file}'];
  fs.writeFileSync(path.join(dir, 'kernel.json'), JSON.stringify({ argv, display_name: 'Python (tf, EG launcher)', language: 'python' }));
  const headers = { Authorization: `token ${sg.tokens.get('bench')!}` };
  const once = async (name: string): Promise<number> => {
    const t0 = performance.now();
    const res = await fetch(`${sg.base}/api/kernels`, { method: 'POST', headers: { ...headers, 'Content-Type': 'application/json' }, body: JSON.stringify({ name }) });
    if (res.status !== 201) throw new Error(`${name}: POST answered ${res.status} ${await res.text()}`);
    const { id } = (await res.json()) as { id: string };
    const ws = await connectWs(`ws://127.0.0.1:${sg.port}/api/kernels/${id}/channels`, headers);
    await firstOutput(ws, 'print(1)');
    const ms = performance.now() - t0;
    ws.close();
    await fetch(`${sg.base}/api/kernels/${id}`, { method: 'DELETE', headers });
    return ms;
  };
  const samples: Record<string, number[]> = { [KERNEL_NAME]: [], [EG_KERNEL]: [] };
  try {
    for (let round = 0; round < N + WARMUP; round++) {
      const order = round % 2 ? [EG_KERNEL, KERNEL_NAME] : [KERNEL_NAME, EG_KERNEL];
      for (const name of order) {
        const ms = await once(name);
        if (round >= WARMUP) samples[name]!.push(ms);
      }
    }
  } finally {
    await sg.close();
  }
  for (const [name, s] of Object.entries(samples)) {
    const sorted = [...s].sort((a, b) => a - b);
    console.log(`${name.padEnd(24)} n=${sorted.length} p50=${percentile(sorted, 50).toFixed(0)} ms p90=${percentile(sorted, 90).toFixed(0)} ms max=${sorted[sorted.length - 1]!.toFixed(0)} ms`);
  }
}

void main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
