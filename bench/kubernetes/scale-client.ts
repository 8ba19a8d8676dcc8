/**
 * The measured side of bench/kubernetes/scale.ts, in its own process so its CPU time and memory are
 * spawngate's alone (the API stand-in runs in the parent). Modes:
 * - `spawngate`: the real kubernetes backend (one label-selected informer + events watch) and the
 *   in-process job queue; each job does what the kernel launch path does with the backend — `ensure`,
 *   then `state()` every 100 ms until running (cache reads).
 * - `naive`: the comparison client: the same queue, but each launch creates its pod and then GETs it
 *   every 100 ms until it runs (per-pod polling, no watch).
 * Prints one JSON line with its measurements.
 */
import { performance } from 'node:perf_hooks';
import winston from 'winston';
import { createKubernetesBackend, loadClientNodeForBench } from './client-loader';
import { openJobQueue } from '../../src/jobs';

interface Args {
  kubeconfig: string;
  namespace: string;
  launches: number;
  idleMs: number;
  mode: 'spawngate' | 'naive';
}

const args = JSON.parse(process.env.SCALE_ARGS ?? '{}') as Args;
const silent = winston.createLogger({ silent: true });
const gc = (globalThis as { gc?: () => void }).gc;

function cpuMs(from?: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(from);
  return (u.user + u.system) / 1000;
}
function memory(): { rssMiB: number; heapUsedMiB: number } {
  gc?.();
  const m = process.memoryUsage();
  return { rssMiB: +(m.rss / 2 ** 20).toFixed(1), heapUsedMiB: +(m.heapUsed / 2 ** 20).toFixed(1) };
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function spec(i: number) {
  return {
    name: `sg-krn-bench-${process.pid}-${i}`,
    kind: 'kernel' as const,
    labels: { app: 'spawngate', component: 'kernel', kernel_id: `bench-${i}` },
    command: ['python3', '-m', 'spawngate.launcher'],
    env: { KERNEL_ID: `bench-${i}`, KERNEL_USERNAME: 'alice', SPAWNGATE_CONNECTION_INFO: JSON.stringify({ shell_port: 52317, key: 'k' }) },
    image: 'registry.example/kernel:1',
    resources: { cpuRequest: 0.5, cpuLimit: 1, memoryRequestMiB: 512, memoryLimitMiB: 1024 },
    ports: { shell: 52317, iopub: 52318, stdin: 52319, control: 52320, hb: 52321 },
  };
}

async function main(): Promise<void> {
  const out: Record<string, unknown> = { mode: args.mode };
  // Code loading (tsx, client-node) is not watching: load it before the baseline.
  await loadClientNodeForBench();
  const base = memory();
  out.baseline = base;
  let cpu0 = process.cpuUsage();
  const t0 = performance.now();

  /** Returns when the create calls returned (ms since epoch). */
  let launchOne: (i: number) => Promise<number>;
  let close: () => Promise<void>;
  if (args.mode === 'spawngate') {
    const backend = createKubernetesBackend({ namespace: args.namespace, kubeconfig: { from: 'file', path: args.kubeconfig }, logger: silent, defaultRunAsUser: 1000 });
    await backend.state('warm-up'); // resolves once the informer has listed the namespace
    launchOne = async (i) => {
      const s = spec(i);
      let state = await backend.ensure(s);
      const ensured = Date.now();
      while (state.phase === 'pending') {
        await sleep(100); // as src/kernels/lifecycle/kernel-service.ts polls: a cache read, no API call
        state = await backend.state(s.name);
      }
      if (state.phase !== 'running') throw new Error(`${s.name}: ${state.reason}`);
      return ensured;
    };
    close = () => backend.close();
  } else {
    const k8s = await loadClientNodeForBench();
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(args.kubeconfig);
    const core = kc.makeApiClient(k8s.CoreV1Api);
    launchOne = async (i) => {
      const s = spec(i);
      await core.createNamespacedPod({
        namespace: args.namespace,
        body: { metadata: { name: s.name, labels: { 'app.kubernetes.io/managed-by': 'spawngate' } }, spec: { restartPolicy: 'Never', containers: [{ name: 'kernel', image: s.image, command: s.command }] } },
      });
      const ensured = Date.now();
      for (;;) {
        await sleep(100);
        const pod = await core.readNamespacedPod({ name: s.name, namespace: args.namespace });
        if (pod.status?.phase === 'Running') return ensured;
      }
    };
    close = async () => undefined;
  }
  out.syncMs = +(performance.now() - t0).toFixed(1);
  out.syncCpuMs = +cpuMs(cpu0).toFixed(1);

  // Idle watching: bookmarks and nothing else.
  cpu0 = process.cpuUsage();
  await sleep(args.idleMs);
  out.idleCpuMsPerSecond = +((cpuMs(cpu0) / args.idleMs) * 1000).toFixed(2);
  out.idle = memory();
  process.stdout.write(`${JSON.stringify({ phase: 'idle-done' })}\n`);
  await new Promise<void>((resolve) => process.stdin.once('data', () => resolve()));

  // Launches at once through the job queue.
  const queue = openJobQueue({ prefix: 'bench', logger: silent as never });
  const times: { name: string; added: number; started: number; ensured: number; ended: number }[] = [];
  queue.process<{ i: number; added: number }, void>(
    'bench.launch',
    async (job) => {
      const started = Date.now();
      const ensured = await launchOne(job.data.i);
      times.push({ name: spec(job.data.i).name, added: job.data.added, started, ensured, ended: Date.now() });
    },
    { concurrency: args.launches },
  );
  cpu0 = process.cpuUsage();
  const l0 = performance.now();
  await Promise.all(
    Array.from({ length: args.launches }, async (_, i) => {
      await queue.add('bench.launch', { i, added: Date.now() }, { jobId: `bench-${i}`, attempts: 1 });
    }),
  );
  const results = await Promise.all(Array.from({ length: args.launches }, (_, i) => queue.waitFor(`bench-${i}`, 120_000)));
  out.failed = results.filter((r) => !r || r.error).length;
  out.launchWallMs = +(performance.now() - l0).toFixed(0);
  out.launchCpuMs = +cpuMs(cpu0).toFixed(1);
  out.afterLaunches = memory();
  out.times = times;
  await queue.close(1000);
  await close();
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exit(0);
}

main().catch((err: unknown) => {
  process.stdout.write(`${JSON.stringify({ error: String(err) })}\n`);
  process.exit(1);
});
