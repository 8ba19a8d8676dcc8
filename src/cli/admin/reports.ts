/** `spawngate admin usage [experiment]` and `spawngate admin audit [filters]`. */
import type { Command } from 'commander';
import { getUsage, listAudit, listUsage } from '../../admin';
import type { AdminContext } from './context';
import { print } from './output';

export function usageCommand(admin: Command, ctx: AdminContext, json: () => boolean): void {
  admin
    .command('usage [experiment]')
    .description("resources held by experiments' live kernels")
    .action((experiment: string | undefined) => ctx.withDb(async (db) => print(ctx.io, json(), experiment ? await getUsage(db, experiment) : await listUsage(db))));
}

export function auditCommand(admin: Command, ctx: AdminContext, json: () => boolean): void {
  admin
    .command('audit')
    .description('audit log, newest first: admin changes (API, CLI, SQL, group sync) and kernel launches')
    .option('--actor <actor>', "e.g. admin-token, oidc:alice, cli:root, sql:postgres")
    .option('--action <action>', "exact, or a prefix ending in '.' (experiments.)")
    .option('--target <target>')
    .option('--since <iso-date-time>')
    .option('--limit <n>', 'at most this many entries', '50')
    .action((o: { actor?: string; action?: string; target?: string; since?: string; limit: string }) =>
      ctx.withDb(async (db) => print(ctx.io, json(), await listAudit(db, o), ['id', 'created_at', 'actor', 'action', 'target', 'details'])),
    );
}
