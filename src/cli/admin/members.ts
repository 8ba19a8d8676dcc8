/** `spawngate admin members list|add|remove <experiment> …`. */
import type { Command } from 'commander';
import { addMember, listMembers, removeMember } from '../../admin';
import type { AdminContext } from './context';
import { print } from './output';

export function membersCommand(admin: Command, ctx: AdminContext, json: () => boolean): void {
  const c = admin.command('members').description("experiment members (source 'sql': administrator, 'oidc': IdP groups)");
  c.command('list <experiment>').action((experiment: string) => ctx.withDb(async (db) => print(ctx.io, json(), await listMembers(db, experiment))));
  c.command('add <experiment> <username>')
    .option('--create-user', 'create the user when unknown')
    .action((experiment: string, username: string, o: { createUser?: boolean }) =>
      ctx.withDb(async (db) => print(ctx.io, json(), await addMember(db, ctx.actor, experiment, { username, create_user: Boolean(o.createUser) }))),
    );
  c.command('remove <experiment> <username>').action((experiment: string, username: string) =>
    ctx.withDb(async (db) => {
      await removeMember(db, ctx.actor, experiment, username);
      print(ctx.io, json(), { experiment, removed: username });
    }),
  );
}
