/**
 * The usage gauges: live kernels and servers, what kernels reserved per experiment (and per user when
 * switched on), and each experiment's quota. They are computed at scrape time from the database through
 * `UsageSource` (two aggregate statements per scrape, shared by every gauge of that scrape), so all API
 * replicas export the same DB-wide values: dashboards take `max by (…)`, never `sum`, across replicas.
 */
import { Gauge, type Registry } from 'prom-client';
import type { ExperimentQuotaRow, LiveUsageRow } from '../db';

export interface UsageSource {
  live(opts: { perUser: boolean }): Promise<LiveUsageRow[]>;
  quotas(): Promise<ExperimentQuotaRow[]>;
}

export interface UsageMetricsOptions {
  /** Export per-user series (`spawngate_user_*`): one series per user with live kernels or servers. */
  perUser: boolean;
  /** `kernels.max_kernels_per_experiment`, exported as `spawngate_experiment_max_kernels` when set. */
  maxKernelsPerExperiment?: number;
  /** Called when the database cannot be read during a scrape (the gauges are then left empty). */
  onError?: (err: unknown) => void;
}

interface Snapshot {
  live: LiveUsageRow[];
  quotas: ExperimentQuotaRow[];
}

const MIB = 1024 * 1024;

type Bound = 'request' | 'limit';
const BOUNDS: Bound[] = ['request', 'limit'];
const cpuOf = (r: { cpu_request: number; cpu_limit: number }, b: Bound): number => (b === 'request' ? r.cpu_request : r.cpu_limit);
const memoryBytesOf = (r: { memory_request_mib: number; memory_limit_mib: number }, b: Bound): number =>
  (b === 'request' ? r.memory_request_mib : r.memory_limit_mib) * MIB;

/** Sums rows into one entry per key (the per-user rows are folded back into per-experiment ones). */
function fold<K extends string>(rows: LiveUsageRow[], key: (r: LiveUsageRow) => K): Map<K, Omit<LiveUsageRow, 'kind' | 'experiment' | 'profile' | 'state' | 'username'>> {
  const out = new Map<K, Omit<LiveUsageRow, 'kind' | 'experiment' | 'profile' | 'state' | 'username'>>();
  for (const r of rows) {
    const k = key(r);
    const acc = out.get(k) ?? { count: 0, cpu_request: 0, cpu_limit: 0, memory_request_mib: 0, memory_limit_mib: 0, gpu_limit: 0 };
    acc.count += r.count;
    acc.cpu_request += r.cpu_request;
    acc.cpu_limit += r.cpu_limit;
    acc.memory_request_mib += r.memory_request_mib;
    acc.memory_limit_mib += r.memory_limit_mib;
    acc.gpu_limit += r.gpu_limit;
    out.set(k, acc);
  }
  return out;
}

/** Registers the usage gauges on `registry`. Returns the names it registered (docs and tests use them). */
export function registerUsageMetrics(registry: Registry, source: UsageSource, opts: UsageMetricsOptions): string[] {
  // Every gauge's collect runs in the same scrape (prom-client gathers them concurrently): the first one
  // starts the read, the others share it; the next scrape reads again.
  let inFlight: Promise<Snapshot | undefined> | undefined;
  const snapshot = (): Promise<Snapshot | undefined> => {
    inFlight ??= Promise.all([source.live({ perUser: opts.perUser }), source.quotas()])
      .then(([live, quotas]) => ({ live, quotas }) as Snapshot | undefined)
      .catch((err: unknown) => {
        opts.onError?.(err);
        return undefined;
      })
      .finally(() => {
        inFlight = undefined;
      });
    return inFlight;
  };

  const names: string[] = [];
  function gauge<L extends string>(name: string, help: string, labelNames: L[], fill: (g: Gauge<L>, s: Snapshot) => void): void {
    names.push(name);
    new Gauge<L>({
      name,
      help,
      labelNames,
      registers: [registry],
      async collect() {
        const s = await snapshot();
        // Series of experiments, users or states that are gone must vanish, not keep their last value.
        this.reset();
        if (s) fill(this, s);
      },
    });
  }

  const kernels = (s: Snapshot): LiveUsageRow[] => s.live.filter((r) => r.kind === 'kernel');
  const servers = (s: Snapshot): LiveUsageRow[] => s.live.filter((r) => r.kind === 'server');

  names.push('spawngate_usage_up');
  new Gauge({
    name: 'spawngate_usage_up',
    help: '1 when this scrape could read usage from the database, 0 when it could not (the usage gauges are then empty)',
    registers: [registry],
    async collect() {
      this.set((await snapshot()) ? 1 : 0);
    },
  });
  gauge('spawngate_kernels', 'Live kernels (starting, running, restarting, dead not yet cleaned up) by experiment and state; experiment="" is kernels without one', ['experiment', 'state'], (g, s) => {
    for (const [key, v] of fold(kernels(s), (r) => `${r.experiment}\u0000${r.state}`)) {
      const [experiment = '', state = ''] = key.split('\u0000');
      g.set({ experiment, state }, v.count);
    }
  });
  gauge('spawngate_servers', 'Single-user servers pending, running or stopping, by profile and state', ['profile', 'state'], (g, s) => {
    for (const [key, v] of fold(servers(s), (r) => `${r.profile}\u0000${r.state}`)) {
      const [profile = '', state = ''] = key.split('\u0000');
      g.set({ profile, state }, v.count);
    }
  });
  gauge('spawngate_experiment_reserved_cpu_cores', "CPU cores reserved by an experiment's live kernels (sum of their requests or limits)", ['experiment', 'bound'], (g, s) => {
    for (const [experiment, v] of fold(kernels(s), (r) => r.experiment)) for (const bound of BOUNDS) g.set({ experiment, bound }, cpuOf(v, bound));
  });
  gauge('spawngate_experiment_reserved_memory_bytes', "Memory reserved by an experiment's live kernels (sum of their requests or limits), bytes", ['experiment', 'bound'], (g, s) => {
    for (const [experiment, v] of fold(kernels(s), (r) => r.experiment)) for (const bound of BOUNDS) g.set({ experiment, bound }, memoryBytesOf(v, bound));
  });
  gauge('spawngate_experiment_reserved_gpus', "GPUs reserved by an experiment's live kernels (sum of their limits)", ['experiment'], (g, s) => {
    for (const [experiment, v] of fold(kernels(s), (r) => r.experiment)) g.set({ experiment }, v.gpu_limit);
  });
  gauge('spawngate_experiment_quota_cpu_cores', "An experiment's CPU quota per kernel (experiments.cpu_request / cpu_limit), cores", ['experiment', 'bound'], (g, s) => {
    for (const q of s.quotas) for (const bound of BOUNDS) g.set({ experiment: q.experiment, bound }, cpuOf(q, bound));
  });
  gauge('spawngate_experiment_quota_memory_bytes', "An experiment's memory quota per kernel (experiments.memory_request_mib / memory_limit_mib), bytes", ['experiment', 'bound'], (g, s) => {
    for (const q of s.quotas) for (const bound of BOUNDS) g.set({ experiment: q.experiment, bound }, memoryBytesOf(q, bound));
  });
  gauge('spawngate_experiment_quota_gpus', "An experiment's GPU quota per kernel (experiments.gpu_limit)", ['experiment'], (g, s) => {
    for (const q of s.quotas) g.set({ experiment: q.experiment }, q.gpu_limit);
  });
  gauge('spawngate_experiment_members', 'Members of an experiment (rows of experiment_members)', ['experiment'], (g, s) => {
    for (const q of s.quotas) g.set({ experiment: q.experiment }, q.members);
  });
  gauge('spawngate_experiment_active', '1 when an experiment is active, 0 when an administrator deactivated it', ['experiment'], (g, s) => {
    for (const q of s.quotas) g.set({ experiment: q.experiment }, q.active ? 1 : 0);
  });
  if (opts.maxKernelsPerExperiment !== undefined) {
    const max = opts.maxKernelsPerExperiment;
    gauge('spawngate_experiment_max_kernels', 'kernels.max_kernels_per_experiment: live kernels one experiment may have (exported only when set)', [], (g) => g.set(max));
  }

  if (opts.perUser) {
    gauge('spawngate_user_kernels', "A user's live kernels by experiment (per-user series: metrics.per_user)", ['user', 'experiment'], (g, s) => {
      for (const [key, v] of fold(kernels(s), (r) => `${r.username ?? ''}\u0000${r.experiment}`)) {
        const [user = '', experiment = ''] = key.split('\u0000');
        g.set({ user, experiment }, v.count);
      }
    });
    gauge('spawngate_user_servers', "A user's servers pending, running or stopping (per-user series: metrics.per_user)", ['user'], (g, s) => {
      for (const [user, v] of fold(servers(s), (r) => r.username ?? '')) g.set({ user }, v.count);
    });
    gauge('spawngate_user_reserved_cpu_cores', "CPU cores reserved by a user's live kernels (per-user series: metrics.per_user)", ['user', 'bound'], (g, s) => {
      for (const [user, v] of fold(kernels(s), (r) => r.username ?? '')) for (const bound of BOUNDS) g.set({ user, bound }, cpuOf(v, bound));
    });
    gauge('spawngate_user_reserved_memory_bytes', "Memory reserved by a user's live kernels, bytes (per-user series: metrics.per_user)", ['user', 'bound'], (g, s) => {
      for (const [user, v] of fold(kernels(s), (r) => r.username ?? '')) for (const bound of BOUNDS) g.set({ user, bound }, memoryBytesOf(v, bound));
    });
    gauge('spawngate_user_reserved_gpus', "GPUs reserved by a user's live kernels (per-user series: metrics.per_user)", ['user'], (g, s) => {
      for (const [user, v] of fold(kernels(s), (r) => r.username ?? '')) g.set({ user }, v.gpu_limit);
    });
  }
  return names;
}
