/** `spawngate admin environments list|show|add|move|remove`. */
import type { Command } from 'commander';
import { createEnvironment, deleteEnvironment, getEnvironment, listEnvironments, updateEnvironment } from '../../admin';
import type { AdminContext } from './context';
import { print } from './output';

export function environmentsCommand(admin: Command, ctx: AdminContext, json: () => boolean): void {
  const c = admin.command('environments').description('environments (conda env names) and their experiment');
  c.command('list')
    .option('--experiment <name>', 'only this experiment\'s')
    .action((o: { experiment?: string }) => ctx.withDb(async (db) => print(ctx.io, json(), await listEnvironments(db, o))));
  c.command('show <name>').action((name: string) => ctx.withDb(async (db) => print(ctx.io, json(), await getEnvironment(db, name))));
  c.command('add <name>')
    .description('register an environment in an experiment')
    .requiredOption('--experiment <name>', 'the experiment whose limits apply')
    .action((name: string, o: { experiment: string }) => ctx.withDb(async (db) => print(ctx.io, json(), await createEnvironment(db, ctx.actor, { name, experiment: o.experiment }))));
  c.command('move <name>')
    .requiredOption('--experiment <name>', 'the new experiment')
    .action((name: string, o: { experiment: string }) => ctx.withDb(async (db) => print(ctx.io, json(), await updateEnvironment(db, ctx.actor, name, { experiment: o.experiment }))));
  c.command('remove <name>')
    .description('unregister (then kernels.unregistered_environments applies)')
    .action((name: string) =>
      ctx.withDb(async (db) => {
        await deleteEnvironment(db, ctx.actor, name);
        print(ctx.io, json(), { removed: name });
      }),
    );
}
