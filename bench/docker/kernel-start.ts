/**
 * Issue 6 benchmark: kernel start latency through the docker backend vs the local backend, same run,
 * same machine, rounds interleaved (the order alternates each round), then N_CONCURRENT kernel
 * launches through docker at once (one per user), all of which must succeed.
 *
 * The concurrent launches run twice: with kernel ports published on 127.0.0.1 (the default when
 * spawngate is not on the containers' network) and on a user-defined network `spawngate-bench`.
 *
 * Latency = `POST /api/kernels` → its 201 (spawngate answers once the kernel answered its own
 * kernel_info probe) → a kernel_info_request sent over the kernel websocket answered by the kernel.
 * Each kernel is shut down (DELETE, awaited) after it is measured.
 *
 * Both spawngates run in-process on the embedded default (PGlite, in-process queue). The docker one
 * talks to podman's Docker API (scripts/setup-podman.sh) and runs kernels in the busybox test image
 * with the host's /usr, /lib, /lib64, /bin and the python-shim bind-mounted read-only — the same
 * Debian ipykernel as the local backend runs, so the difference is the container's cost.
 *
 *   npx tsx bench/docker/kernel-start.ts      (env N=10 rounds, WARMUP=1, N_CONCURRENT=50)
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import Docker from 'dockerode';
import { performance } from 'node:perf_hooks';
import type WebSocket from 'ws';
import { connectWs } from '../../tests/support/jupyter-ws';
import { HOST_BINDS, SHIM_BIND, TEST_IMAGE, TEST_LAUNCHER, TEST_UID, prepareEngine } from '../../tests/support/podman';
import { KERNEL_NAME, percentile, startSpawngate, type Spawngate } from '../kernels/common';

const N = Number(process.env.N ?? 10);
const WARMUP = Number(process.env.WARMUP ?? 1);
const N_CONCURRENT = Number(process.env.N_CONCURRENT ?? 50);
const NETWORK = 'spawngate-bench';

/** Answers once the kernel replied to a kernel_info_request sent over the websocket. */
function kernelInfo(ws: WebSocket, timeoutMs = 60_000): Promise<void> {
  const msgId = randomUUID();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no kernel_info_reply within ${timeoutMs} ms`)), timeoutMs);
    const onMessage = (data: WebSocket.RawData): void => {
      const m = JSON.parse(data.toString()) as { header: { msg_type: string }; parent_header?: { msg_id?: string } };
      if (m.parent_header?.msg_id !== msgId || m.header.msg_type !== 'kernel_info_reply') return;
      clearTimeout(timer);
      ws.off('message', onMessage);
      resolve();
    };
    ws.on('message', onMessage);
    ws.send(
      JSON.stringify({
        header: { msg_id: msgId, msg_type: 'kernel_info_request', session: randomUUID(), username: 'bench', date: new Date().toISOString(), version: '5.3' },
        parent_header: {},
        metadata: {},
        content: {},
        channel: 'shell',
        buffers: [],
      }),
    );
  });
}

async function api(sg: Spawngate, user: string, method: string, p: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${sg.base}${p}`, {
    method,
    headers: { Authorization: `token ${sg.tokens.get(user)}`, 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

/** One start: POST → 201 → kernel_info over the websocket; then DELETE. Returns ms to kernel_info. */
async function startOnce(sg: Spawngate, user: string): Promise<number> {
  const t0 = performance.now();
  const res = await api(sg, user, 'POST', '/api/kernels', { name: KERNEL_NAME });
  if (res.status !== 201) throw new Error(`POST /api/kernels answered ${res.status}: ${JSON.stringify(res.body)}`);
  const id = String(res.body.id);
  const ws = await connectWs(`${sg.base.replace('http', 'ws')}/api/kernels/${id}/channels`, { Authorization: `token ${sg.tokens.get(user)}` });
  try {
    await kernelInfo(ws);
    return performance.now() - t0;
  } finally {
    ws.close();
    await api(sg, user, 'DELETE', `/api/kernels/${id}`);
  }
}

const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
function summary(samples: number[]): string {
  const s = [...samples].sort((a, b) => a - b);
  return `p50 ${fmt(percentile(s, 50))}  p90 ${fmt(percentile(s, 90))}  max ${fmt(s[s.length - 1]!)}`;
}

async function main(): Promise<void> {
  const engine = prepareEngine();
  if (engine.unavailable) throw new Error(`no container engine: ${engine.unavailable}`);
  const users = Array.from({ length: Math.max(N_CONCURRENT, 1) }, (_, i) => `bench${i + 1}`);
  // dockerode reads DOCKER_HOST from the process environment, as every Docker client does.
  process.env.DOCKER_HOST = `unix://${engine.socketPath}`;
  const local = await startSpawngate({ users: ['bench1'] });
  const startDocker = async (network?: string): Promise<Spawngate> => {
    const sg = await startSpawngate({
      users,
      env: { SPAWNGATE_BACKEND: 'docker' },
      yaml: [
        'kernels:',
        `  image: ${TEST_IMAGE}`,
        `  launcher: ${JSON.stringify(TEST_LAUNCHER)}`,
        '  launch_timeout_seconds: 120',
        'docker:',
        `  extra_binds: ${JSON.stringify([...HOST_BINDS, SHIM_BIND])}`,
        `  label_prefix: sgbench-${process.pid}-${network ? 'net' : 'pub'}`,
        ...(network ? [`  network: ${network}`] : []),
      ].join('\n'),
    });
    // Containers run as the home owner, never root.
    execFileSync('chown', ['-R', `${TEST_UID}:${TEST_UID}`, path.join(sg.root, 'homes')]);
    return sg;
  };
  const docker = await startDocker();
  try {
    const samples = { local: [] as number[], docker: [] as number[] };
    for (let round = 0; round < WARMUP + N; round++) {
      const order: Array<['local' | 'docker', Spawngate]> = round % 2 ? [['docker', docker], ['local', local]] : [['local', local], ['docker', docker]];
      for (const [name, sg] of order) {
        const ms = await startOnce(sg, 'bench1');
        if (round >= WARMUP) samples[name].push(ms);
      }
    }
    if (N > 0) {
      console.log(`kernel start, POST /api/kernels → kernel_info answered (${N} rounds, interleaved, ${WARMUP} warm-up)`);
      console.log(`  local  backend: ${summary(samples.local)}`);
      console.log(`  docker backend: ${summary(samples.docker)}   (ports published on 127.0.0.1; podman, runc, busybox image + host Python)`);
    }
    let failed = await concurrent(docker, users, 'ports published on 127.0.0.1');
    await docker.close();
    // The same through a user-defined network: spawngate reaches kernels at their container address.
    const dockerApi = new Docker({ socketPath: engine.socketPath! });
    await dockerApi.createNetwork({ Name: NETWORK }).catch(() => undefined);
    const onNet = await startDocker(NETWORK);
    try {
      failed += await concurrent(onNet, users, `network ${NETWORK}`);
    } finally {
      await onNet.close();
    }
    if (failed) process.exitCode = 1;
  } finally {
    await local.close();
  }
}

/** N_CONCURRENT launches at once, one per user; prints the count and wall time. Returns failures. */
async function concurrent(sg: Spawngate, users: string[], how: string): Promise<number> {
  const t0 = performance.now();
  const results = await Promise.allSettled(users.slice(0, N_CONCURRENT).map((u) => api(sg, u, 'POST', '/api/kernels', { name: KERNEL_NAME })));
  const wall = performance.now() - t0;
  const ok = results.filter((r) => r.status === 'fulfilled' && r.value.status === 201);
  const failures = results
    .map((r) => (r.status === 'rejected' ? String(r.reason) : r.value.status !== 201 ? `${r.value.status} ${JSON.stringify(r.value.body)}` : undefined))
    .filter(Boolean);
  console.log(`${N_CONCURRENT} concurrent kernel launches through docker (${how}): ${ok.length}/${N_CONCURRENT} succeeded, wall ${fmt(wall)}`);
  for (const f of failures.slice(0, 5)) console.log(`  failure: ${String(f).slice(0, 300)}`);
  await Promise.all(
    results.map(async (r, i) => {
      if (r.status === 'fulfilled' && r.value.status === 201) await api(sg, users[i]!, 'DELETE', `/api/kernels/${String(r.value.body.id)}`);
    }),
  );
  return N_CONCURRENT - ok.length;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
