/**
 * Issue 14 figure: kernel start through an Enterprise-Gateway-style launcher (tests/eg/eg_launcher.py:
 * response-address handshake, RSA + AES, its own ports) vs spawngate's own launcher, same run,
 * interleaved, on the local backend and (when podman's Docker API is available) the docker backend:
 * - local: `ipykernel_launcher -f {connection_file}` vs the EG launcher as a process of the home owner;
 * - docker: spawngate's container launcher (connection file from the service, published ports) vs the
 *   EG launcher as the container's own command (reports to the user network's gateway, reached at the
 *   container's address), both in the busybox test image with the host's Python bind-mounted.
 * A start is `POST /api/kernels` → first output of `print(1)` over the kernel websocket; each kernel is
 * shut down (not timed) before the next.
 *
 *   npx tsx bench/kernels/eg-launcher.ts    (env N=10 rounds, WARMUP=1 round not counted,
 *                                            BACKENDS=local,docker)
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { connectWs } from '../../tests/support/jupyter-ws';
import { HOST_BINDS, SHIM_BIND, TEST_IMAGE, TEST_LAUNCHER, TEST_UID, prepareEngine } from '../../tests/support/podman';
import { firstOutput, KERNEL_NAME, percentile, startSpawngate, SYSTEM_PYTHON, type Spawngate } from './common';

const N = Number(process.env.N ?? 10);
const WARMUP = Number(process.env.WARMUP ?? 1);
const BACKENDS = (process.env.BACKENDS ?? 'local,docker').split(',');
const EG_KERNEL = 'conda-env-tf-python_eg';
const LAUNCHER = path.join(__dirname, '..', '..', 'tests', 'eg', 'eg_launcher.py');

function kernelDir(sg: Spawngate): string {
  const dir = path.join(sg.root, 'homes', 'bench', '.conda', 'envs', 'tf', 'share', 'jupyter', 'kernels', 'python_eg');
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/** Starts of the two kernels, interleaved, N rounds after WARMUP. */
async function measure(sg: Spawngate): Promise<Record<string, number[]>> {
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
  for (let round = 0; round < N + WARMUP; round++) {
    const order = round % 2 ? [EG_KERNEL, KERNEL_NAME] : [KERNEL_NAME, EG_KERNEL];
    for (const name of order) {
      const ms = await once(name);
      if (round >= WARMUP) samples[name]!.push(ms);
    }
  }
  return samples;
}

async function local(): Promise<Record<string, number[]>> {
  // The fixture homes are made by root: the launch path, not workload identity, is measured here.
  const sg = await startSpawngate({ users: ['bench'], env: { SPAWNGATE_LOCAL_ALLOW_ROOT: '1' } });
  try {
    const dir = kernelDir(sg);
    fs.copyFileSync(LAUNCHER, path.join(dir, 'eg_launcher.py'));
    const argv = [SYSTEM_PYTHON, '{resource_dir}/eg_launcher.py', '--kernel-id', '{kernel_id}', '--port-range', '{port_range}', '--response-address', '{response_address}', '--public-key', '{public_key}', '--resource-dir', '{resource_dir}', '{connection_file}'];
    fs.writeFileSync(path.join(dir, 'kernel.json'), JSON.stringify({ argv, display_name: 'Python (tf, EG launcher)', language: 'python' }));
    return await measure(sg);
  } finally {
    await sg.close();
  }
}

async function docker(socketPath: string): Promise<Record<string, number[]>> {
  // The EG launcher as an image would hold it: a directory readable by the kernels' uid, bind-mounted.
  const image = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-bench-eg-image-'));
  fs.chmodSync(image, 0o755);
  fs.copyFileSync(LAUNCHER, path.join(image, 'eg_launcher.py'));
  fs.chmodSync(path.join(image, 'eg_launcher.py'), 0o644);
  const previous = process.env.DOCKER_HOST;
  process.env.DOCKER_HOST = `unix://${socketPath}`;
  const yaml = [
    'kernels:',
    `  image: ${TEST_IMAGE}`,
    `  launcher: ${JSON.stringify(TEST_LAUNCHER)}`,
    `  allowed_images: [${JSON.stringify(TEST_IMAGE)}]`,
    'docker:',
    `  extra_binds: ${JSON.stringify([...HOST_BINDS, SHIM_BIND, `${image}:${image}:ro`])}`,
    `  label_prefix: sgbench-${process.pid}`,
  ].join('\n');
  const sg = await startSpawngate({ users: ['bench'], yaml, env: { SPAWNGATE_BACKEND: 'docker' } });
  try {
    const dir = kernelDir(sg);
    const argv = [SYSTEM_PYTHON, path.join(image, 'eg_launcher.py'), '--kernel-id', '{kernel_id}', '--port-range', '{port_range}', '--response-address', '{response_address}', '--public-key', '{public_key}'];
    const metadata = { process_proxy: { class_name: 'enterprise_gateway.services.processproxies.docker_swarm.DockerProcessProxy', config: { image_name: TEST_IMAGE, port_range: '40000..40999' } } };
    fs.writeFileSync(path.join(dir, 'kernel.json'), JSON.stringify({ argv, display_name: 'Python (tf, EG launcher)', language: 'python', metadata }));
    // Containers run as the home's owner, never root.
    execFileSync('chown', ['-R', `${TEST_UID}:${TEST_UID}`, path.join(sg.root, 'homes', 'bench')]);
    return await measure(sg);
  } finally {
    await sg.close();
    fs.rmSync(image, { recursive: true, force: true });
    if (previous === undefined) delete process.env.DOCKER_HOST;
    else process.env.DOCKER_HOST = previous;
  }
}

function print(backend: string, samples: Record<string, number[]>): void {
  for (const [name, s] of Object.entries(samples)) {
    const sorted = [...s].sort((a, b) => a - b);
    const what = name === EG_KERNEL ? 'EG launcher' : "spawngate's own launcher";
    console.log(`${backend.padEnd(7)} ${what.padEnd(25)} n=${sorted.length} p50=${percentile(sorted, 50).toFixed(0)} ms p90=${percentile(sorted, 90).toFixed(0)} ms max=${sorted[sorted.length - 1]!.toFixed(0)} ms`);
  }
}

async function main(): Promise<void> {
  if (BACKENDS.includes('local')) print('local', await local());
  if (BACKENDS.includes('docker')) {
    const engine = prepareEngine();
    if (engine.unavailable) console.log(`docker  skipped: ${engine.unavailable}`);
    else print('docker', await docker(engine.socketPath!));
  }
}

void main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
