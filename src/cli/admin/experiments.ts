/** `spawngate admin experiments list|show|create|update|deactivate|activate`. */
import type { Command } from 'commander';
import { createExperiment, getExperiment, listExperiments, setExperimentActive, updateExperiment } from '../../admin';
import type { AdminContext } from './context';
import { print } from './output';

const COLUMNS = ['name', 'active', 'cpu_request', 'cpu_limit', 'memory_request_mib', 'memory_limit_mib', 'gpu_limit', 'environments', 'members'];

interface LimitOpts {
  cpuRequest?: string;
  cpuLimit?: string;
  memoryRequestMib?: string;
  memoryLimitMib?: string;
  gpuLimit?: string;
}

/** Option strings → numbers; zod (in src/admin) says what is wrong with a value that is not one. */
function limits(o: LimitOpts): Record<string, number> {
  const out: Record<string, number> = {};
  const map: [keyof LimitOpts, string][] = [
    ['cpuRequest', 'cpu_request'],
    ['cpuLimit', 'cpu_limit'],
    ['memoryRequestMib', 'memory_request_mib'],
    ['memoryLimitMib', 'memory_limit_mib'],
    ['gpuLimit', 'gpu_limit'],
  ];
  for (const [opt, field] of map) if (o[opt] !== undefined) out[field] = Number(o[opt]);
  return out;
}

const limitOptions = (c: Command): Command =>
  c
    .option('--cpu-request <cores>', 'cores requested per kernel')
    .option('--cpu-limit <cores>', 'cores limit per kernel')
    .option('--memory-request-mib <MiB>', 'memory requested per kernel')
    .option('--memory-limit-mib <MiB>', 'memory limit per kernel')
    .option('--gpu-limit <n>', 'GPUs per kernel');

export function experimentsCommand(admin: Command, ctx: AdminContext, json: () => boolean): void {
  const c = admin.command('experiments').description('experiments and their per-kernel limits');
  c.command('list')
    .option('--active-only', 'hide inactive experiments')
    .action((o: { activeOnly?: boolean }) => ctx.withDb(async (db) => print(ctx.io, json(), await listExperiments(db, { includeInactive: !o.activeOnly }), COLUMNS)));
  c.command('show <name>').action((name: string) => ctx.withDb(async (db) => print(ctx.io, json(), await getExperiment(db, name), COLUMNS)));
  limitOptions(c.command('create <name>').description('create an experiment (cpu and memory requests and limits are required)')).action((name: string, o: LimitOpts) =>
    ctx.withDb(async (db) => print(ctx.io, json(), await createExperiment(db, ctx.actor, { name, ...limits(o) }), COLUMNS)),
  );
  limitOptions(c.command('update <name>').description('change limits (applies to the next launch)'))
    .option('--rename <new-name>', 'rename the experiment')
    .action((name: string, o: LimitOpts & { rename?: string }) =>
      ctx.withDb(async (db) => print(ctx.io, json(), await updateExperiment(db, ctx.actor, name, { ...limits(o), ...(o.rename ? { name: o.rename } : {}) }), COLUMNS)),
    );
  c.command('deactivate <name>')
    .description('refuse launches in its environments')
    .action((name: string) => ctx.withDb(async (db) => print(ctx.io, json(), await setExperimentActive(db, ctx.actor, name, false), COLUMNS)));
  c.command('activate <name>').action((name: string) => ctx.withDb(async (db) => print(ctx.io, json(), await setExperimentActive(db, ctx.actor, name, true), COLUMNS)));
}
