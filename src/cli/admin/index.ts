/**
 * `spawngate admin <resource> <verb> …`: the admin API's operations from a shell, against
 * SPAWNGATE_DATABASE_URL (or the embedded database). Returns an exit status instead of exiting, so
 * tests run it in-process: 0 ok, 1 refused (validation, unknown name, conflict) or failed, 2 usage.
 */
import { Command, CommanderError } from 'commander';
import { AdminError } from '../../admin';
import { ConfigError, loadConfig, type Config } from '../../config';
import { createAdminContext } from './context';
import { environmentsCommand } from './environments';
import { experimentsCommand } from './experiments';
import { membersCommand } from './members';
import { type Io } from './output';
import { auditCommand, usageCommand } from './reports';
import { usersCommand } from './users';

export { renderTable, type Io } from './output';

export interface RunAdminOptions {
  io?: Io;
  env?: NodeJS.ProcessEnv;
}

export async function runAdmin(args: string[], opts: RunAdminOptions = {}): Promise<number> {
  const io: Io = opts.io ?? { stdout: (s) => void process.stdout.write(s), stderr: (s) => void process.stderr.write(s) };
  let config: Config | undefined;
  const ctx = createAdminContext(() => (config ??= loadConfig(opts.env ?? process.env)), io);
  const admin = new Command('spawngate admin')
    .description('administer experiments, environments, members and users (SPAWNGATE_DATABASE_URL or the embedded database)')
    .option('--json', 'print JSON instead of a table')
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
  const json = () => Boolean(admin.opts<{ json?: boolean }>().json);
  experimentsCommand(admin, ctx, json);
  environmentsCommand(admin, ctx, json);
  membersCommand(admin, ctx, json);
  usersCommand(admin, ctx, json);
  usageCommand(admin, ctx, json);
  auditCommand(admin, ctx, json);
  // Subcommands inherit exit override, output and the position-independent --json.
  const inherit = (c: Command): void =>
    c.commands.forEach((sub) => {
      sub.exitOverride().configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
      if (!sub.options.some((o) => o.long === '--json')) sub.option('--json', 'print JSON instead of a table');
      inherit(sub);
    });
  inherit(admin);
  const jsonAnywhere = args.includes('--json');
  const argv = args.filter((a) => a !== '--json');
  if (jsonAnywhere) argv.unshift('--json');
  try {
    await admin.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof AdminError || err instanceof ConfigError) {
      io.stderr(`spawngate admin: ${err.message}\n`);
      return err instanceof ConfigError ? 2 : 1;
    }
    const e = err as Error;
    io.stderr(`spawngate admin: ${e.name === 'DatabaseUnavailableError' ? e.message : `${e.name}: ${e.message}`}\n`);
    return 1;
  }
}
