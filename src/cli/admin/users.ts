/** `spawngate admin users list|show|create|update|deactivate|activate`. */
import type { Command } from 'commander';
import { createUser, getUser, listUsers, setUserActive, updateUser } from '../../admin';
import type { AdminContext } from './context';
import { print } from './output';

const COLUMNS = ['username', 'active', 'email', 'experiments'];

export function usersCommand(admin: Command, ctx: AdminContext, json: () => boolean): void {
  const c = admin.command('users').description('users');
  c.command('list')
    .option('--active-only', 'hide inactive users')
    .action((o: { activeOnly?: boolean }) => ctx.withDb(async (db) => print(ctx.io, json(), await listUsers(db, { includeInactive: !o.activeOnly }), COLUMNS)));
  c.command('show <username>').action((username: string) => ctx.withDb(async (db) => print(ctx.io, json(), await getUser(db, username), COLUMNS)));
  c.command('create <username>')
    .option('--email <address>')
    .action((username: string, o: { email?: string }) => ctx.withDb(async (db) => print(ctx.io, json(), await createUser(db, ctx.actor, { username, email: o.email }), COLUMNS)));
  c.command('update <username>')
    .option('--email <address>', 'set the email')
    .option('--clear-email', 'remove the email')
    .action((username: string, o: { email?: string; clearEmail?: boolean }) =>
      ctx.withDb(async (db) => print(ctx.io, json(), await updateUser(db, ctx.actor, username, o.clearEmail ? { email: null } : o.email !== undefined ? { email: o.email } : {}), COLUMNS)),
    );
  c.command('deactivate <username>')
    .description('refuse their launches')
    .action((username: string) => ctx.withDb(async (db) => print(ctx.io, json(), await setUserActive(db, ctx.actor, username, false), COLUMNS)));
  c.command('activate <username>').action((username: string) => ctx.withDb(async (db) => print(ctx.io, json(), await setUserActive(db, ctx.actor, username, true), COLUMNS)));
}
