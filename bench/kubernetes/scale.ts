/**
 * Kubernetes backend at scale (issue 5): the API stand-in (tests/backends/kubernetes/fake-apiserver.ts)
 * preloaded with pods in the watched namespace — 10 % of them spawngate's, the rest other workloads —
 * then 200 kernel launches at once through the job queue. Reported for 200 and for 2,000 preloaded pods:
 * spawngate's CPU time and memory (RSS, heap after GC) for syncing and watching, API calls per launch
 * (writes, reads, watches), and each launch's overhead inside spawngate: its time from queue add to
 * "running" seen, minus the kubelet's own time from pod create to Running (the stand-in's timeline).
 *
 * What a pod runs: nothing. 200 real ipykernels do not fit on this machine's 2 cores, so the stand-in's
 * kubelet marks pods Running after its step delays (schedule, pull, start: `--step-ms` each) without a
 * process, and the bench measures the backend-level launch through the queue: what the kernel launch
 * job does with the backend (ensure, then state() every 100 ms from the informer's cache). The
 * kernel_info probe over ZMQ is not included (bench/kernels measures it on real kernels).
 *
 * Peers: KubeSpawner (one reflector per kind, plus polling) and Enterprise Gateway's Kubernetes process
 * proxy are Python packages this machine cannot install (no PyPI access; Debian has no package for
 * either — checked with apt-cache at run time and printed). In their place the bench runs a naive
 * per-pod polling client (create, then GET the pod every 100 ms) against the same stand-in.
 *
 *   npx tsx bench/kubernetes/scale.ts [--launches 200] [--step-ms 100] [--idle-ms 5000]
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FakeApiServer, readDocumentedRole } from '../../tests/backends/kubernetes/fake-apiserver';

const argv = process.argv.slice(2);
const opt = (name: string, def: number) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : def;
};
const LAUNCHES = opt('launches', 200);
const STEP_MS = opt('step-ms', 100);
const IDLE_MS = opt('idle-ms', 5000);

interface ClientResult {
  mode: string;
  error?: string;
  syncMs: number;
  syncCpuMs: number;
  idleCpuMsPerSecond: number;
  idle: { rssMiB: number; heapUsedMiB: number };
  baseline: { rssMiB: number; heapUsedMiB: number };
  afterLaunches: { rssMiB: number; heapUsedMiB: number };
  launchWallMs: number;
  launchCpuMs: number;
  failed: number;
  times: { name: string; added: number; started: number; ensured: number; ended: number }[];
}

function pct(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
}

async function scenario(total: number, mode: 'spawngate' | 'naive') {
  const role = readDocumentedRole();
  const fake = await new FakeApiServer({ namespace: role.namespace, rules: role.rules, stepMs: STEP_MS, bookmarkMs: 1000, validate: false }).start();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-k8s-bench-'));
  const ours = Math.round(total / 10);
  for (let i = 0; i < total; i++) {
    const labels: Record<string, string> = i < ours
      ? { app: 'spawngate', component: 'kernel', 'app.kubernetes.io/managed-by': 'spawngate', kernel_id: `old-${i}` }
      : { app: `other-${i % 17}`, 'app.kubernetes.io/managed-by': 'helm', tier: 'web' };
    fake.preloadPod(`${i < ours ? 'sg-krn-old' : 'web'}-${i}`, labels);
  }
  const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', path.join(__dirname, 'scale-client.ts')], {
    env: { ...process.env, SCALE_ARGS: JSON.stringify({ kubeconfig: fake.writeKubeconfig(dir), namespace: role.namespace, launches: LAUNCHES, idleMs: IDLE_MS, mode }) },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  let buf = '';
  let before = 0;
  const result = await new Promise<ClientResult>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      buf += c.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = JSON.parse(buf.slice(0, nl)) as { phase?: string } & ClientResult;
        buf = buf.slice(nl + 1);
        if (line.phase === 'idle-done') {
          before = fake.requests.length; // API calls from here on belong to the launches
          child.stdin.write('go\n');
        } else resolve(line);
      }
    });
    child.on('exit', (code) => code && reject(new Error(`client exited ${code}`)));
  });
  if (result.error) throw new Error(result.error);
  const during = fake.requests.slice(before);
  const writes = during.filter((r) => ['create', 'delete', 'update', 'patch'].includes(r.verb)).length;
  const reads = during.filter((r) => r.verb === 'get' || r.verb === 'list').length;
  const watches = during.filter((r) => r.verb === 'watch').length;
  const overhead = result.times.map((t) => {
    const k = fake.timeline.get(t.name);
    return t.ended - t.added - (k?.running && k.created ? k.running - k.created : 0);
  });
  const kubelet = result.times.map((t) => {
    const k = fake.timeline.get(t.name)!;
    return k.running! - k.created;
  });
  const createRtt = result.times.map((t) => t.ensured - t.started);
  const seenAfter = result.times.map((t) => t.ended - fake.timeline.get(t.name)!.running!);
  await fake.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return { total, ours, mode, result, writes, reads, watches, overhead, kubelet, createRtt, seenAfter };
}

function peers(): string {
  const lines: string[] = [];
  for (const pkg of ['python3-kubespawner', 'python3-jupyter-enterprise-gateway']) {
    let policy: string;
    try {
      policy = execFileSync('apt-cache', ['policy', pkg], { encoding: 'utf8' }).trim();
    } catch {
      policy = '';
    }
    lines.push(`  ${pkg}: ${policy ? policy.split('\n').slice(0, 3).join(' / ') : 'no such Debian package'}`);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  console.log(`kubernetes backend scale bench: ${LAUNCHES} launches at once through the in-process job queue, kubelet step ${STEP_MS} ms (3 steps to Running)`);
  console.log('pods run nothing (the stand-in marks them Running); launch = ensure + state() polling of the informer cache, no kernel_info probe');
  console.log('the stand-in skips its schema validation here (tests keep it on): its AJV checks, not spawngate, would otherwise dominate the create latency');
  console.log('peers (KubeSpawner, Enterprise Gateway) could not run here — no PyPI access and:');
  console.log(peers());
  console.log('comparison instead: a naive per-pod polling client (create, then GET every 100 ms) against the same stand-in\n');
  const load = () => os.loadavg().map((l) => l.toFixed(1)).join(' ');
  console.log(`load average before: ${load()} on ${os.cpus().length} cores (wall-clock columns suffer from other work on the machine; CPU and call counts do not)`);
  const runs = [await scenario(200, 'spawngate'), await scenario(2000, 'spawngate'), await scenario(2000, 'naive')];
  console.log(`load average after: ${load()}`);
  const rows = runs.map((r) => ({
    client: r.mode,
    'pods in ns (ours)': `${r.total} (${r.ours})`,
    'sync ms': r.result.syncMs,
    'sync CPU ms': r.result.syncCpuMs,
    'idle CPU ms/s': r.result.idleCpuMsPerSecond,
    'RSS growth MiB': +(r.result.idle.rssMiB - r.result.baseline.rssMiB).toFixed(1),
    'heap growth MiB': +(r.result.idle.heapUsedMiB - r.result.baseline.heapUsedMiB).toFixed(1),
    'launch CPU ms': r.result.launchCpuMs,
    'heap after launches MiB': +(r.result.afterLaunches.heapUsedMiB - r.result.baseline.heapUsedMiB).toFixed(1),
    'writes/launch': +(r.writes / LAUNCHES).toFixed(2),
    'reads/launch': +(r.reads / LAUNCHES).toFixed(2),
    'watches opened': r.watches,
    'kubelet p50 ms': pct(r.kubelet, 50),
    'queue wait p99 ms': pct(r.result.times.map((t) => t.started - t.added), 99),
    'create calls p99 ms': pct(r.createRtt, 99),
    'Running→seen p99 ms': pct(r.seenAfter, 99),
    'CPU ms/launch': +(r.result.launchCpuMs / LAUNCHES).toFixed(2),
    'overhead p50 ms': pct(r.overhead, 50),
    'overhead p99 ms': pct(r.overhead, 99),
    failed: r.result.failed,
  }));
  console.table(rows);
  console.log('growth = after the informer synced and watched idle, over the same process with the code loaded (GC run first); "heap after launches" likewise, with the new pods cached.');
  console.log('create calls = ensure() wall time (pod + secret creates, 200 at once against the single-threaded stand-in); Running→seen = the stand-in marking the pod Running → the launch seeing it (watch delivery + the 100 ms poll of the cache); CPU ms/launch = the measured process\'s CPU during the launches / launches.');
  console.log('overhead = queue add → running seen by the client, minus the kubelet\'s create → Running; it includes the queue, the API round trips, the watch delivery and the 100 ms poll interval of the launch path.');
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
