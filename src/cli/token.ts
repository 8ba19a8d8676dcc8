/**
 * `spawngate token`: personal API tokens from a shell. Mint (the default, `spawngate token --user
 * alice`), list (metadata only) and revoke. A minted token expires after 24 hours unless `--ttl` says
 * otherwise (`--ttl 0`: never). The new token is the only secret ever printed, once, to stdout; the
 * rest goes to stderr. Mint and revoke are audited as `cli:<OS user>`. Returns an exit status.
 */
import { Command, CommanderError } from 'commander';
import { AdminError, listTokenModels, mintUserToken, revokeAllTokens, revokeTokenModel } from '../admin';
import { ConfigError, loadConfig, type Config } from '../config';
import { createAdminContext } from './admin/context';
import { print, type Io } from './admin/output';

const COLUMNS = ['id', 'username', 'kind', 'state', 'created_at', 'expires_at', 'note'];

export interface RunTokenOptions {
  io?: Io;
  env?: NodeJS.ProcessEnv;
}

type MintOptions = { user?: string; ttl: string; note?: string };

export async function runToken(args: string[], opts: RunTokenOptions = {}): Promise<number> {
  const io: Io = opts.io ?? { stdout: (s) => void process.stdout.write(s), stderr: (s) => void process.stderr.write(s) };
  let config: Config | undefined;
  const ctx = createAdminContext(() => (config ??= loadConfig(opts.env ?? process.env)), io);

  async function mint(o: MintOptions): Promise<void> {
    if (!o.user) throw new AdminError('invalid', '--user: name the user the token acts as');
    const { token, info } = await ctx.withDb((db) => mintUserToken(db, ctx.actor, { username: o.user, ttl: o.ttl, note: o.note }));
    io.stdout(`${token}\n`);
    io.stderr(`token ${info.id} for '${info.username}' ${info.expires_at ? `expires ${info.expires_at}` : 'never expires'}\n`);
  }
  const mintOptions = (c: Command): Command =>
    c
      .option('--user <name>', 'user the token acts as')
      .option('--ttl <duration>', 'lifetime: seconds, or 15m, 24h, 7d, 2w; 0: never expires', '24h')
      .option('--note <text>', 'why the token exists');

  const root = mintOptions(new Command('spawngate token'))
    .description('mint (default), list and revoke API tokens acting as a user')
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .action((o: MintOptions) => mint(o));
  mintOptions(root.command('mint').description('mint a token; prints it once'))
    .exitOverride()
    .action((o: MintOptions) => mint(o));
  root
    .command('list')
    .description('tokens and their state (never the token itself)')
    .option('--user <name>', "only this user's tokens")
    .option('--all', 'also expired and revoked tokens')
    .option('--json', 'print JSON instead of a table')
    .exitOverride()
    .action((o: { user?: string; all?: boolean; json?: boolean }) =>
      ctx.withDb(async (db) => print(io, Boolean(o.json), await listTokenModels(db, { user: o.user, all: o.all ? 'true' : undefined }), COLUMNS)),
    );
  root
    .command('revoke [id]')
    .description('revoke one token by id, or every token of a user with --user')
    .option('--user <name>', "revoke all of this user's tokens")
    .exitOverride()
    .action((id: string | undefined, o: { user?: string }) =>
      ctx.withDb(async (db) => {
        if (id !== undefined && o.user === undefined) {
          const n = Number(id);
          if (!Number.isSafeInteger(n) || n <= 0) throw new AdminError('invalid', `token id must be a positive integer, got '${id}'`);
          const info = await revokeTokenModel(db, ctx.actor, n);
          io.stdout(`revoked token ${info.id} of '${info.username}'\n`);
        } else if (id === undefined && o.user !== undefined) {
          io.stdout(`revoked ${await revokeAllTokens(db, ctx.actor, o.user)} token(s) of '${o.user}'\n`);
        } else {
          throw new AdminError('invalid', 'name a token id, or --user <name> (not both)');
        }
      }),
    );
  try {
    await root.parseAsync(args, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2;
    if (err instanceof AdminError || err instanceof ConfigError) {
      io.stderr(`spawngate token: ${err.message}\n`);
      return err instanceof ConfigError ? 2 : 1;
    }
    const e = err as Error;
    io.stderr(`spawngate token: ${e.name === 'DatabaseUnavailableError' ? e.message : `${e.name}: ${e.message}`}\n`);
    return 1;
  }
}
