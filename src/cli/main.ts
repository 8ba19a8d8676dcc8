/**
 * The `spawngate` command: serve (API + workers), worker, migrate, token (src/cli/token.ts), admin
 * (src/cli/admin), sql (src/cli/sql.ts), backup/restore (src/cli/backup.ts), dry-run, config-doc.
 * Configuration errors end the process with a message naming the variable, exit status 2.
 */
import fs from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { ConfigError, loadConfig, type Config } from '../config';
import { migrate, openDatabase } from '../db';
import { logger } from '../logging';
import { createService, type Service } from '../compose';
import { runAdmin } from './admin';
import { runBackup, runRestore } from './backup';
import { runSql } from './sql';
import { renderConfigDoc } from './config-doc';
import { runToken } from './token';
import { dryRunArgsSchema, renderDryRun } from './dry-run';

const VERSION: string = (() => {
  try {
    // Two levels up from both src/cli and dist/cli.
    return (JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
})();

function fatal(err: unknown): never {
  const e = err as Error;
  const message = e instanceof ConfigError || e?.name === 'DatabaseUnavailableError' || e?.name === 'QueueUnavailableError' || e?.name === 'RestoreRefusedError' ? e.message : `${e?.name}: ${e?.message}`;
  console.error(`spawngate: ${message}`);
  process.exit(e instanceof ConfigError ? 2 : 1);
}

function config(): Config {
  try {
    return loadConfig();
  } catch (err) {
    fatal(err);
  }
}

/** Runs until SIGTERM/SIGINT, then closes gracefully (a second signal exits at once). */
function runUntilSignal(service: Service, stopWorkloads: boolean): void {
  let closing = false;
  const shutdown = (signal: string): void => {
    if (closing) process.exit(1);
    closing = true;
    logger.info('shutting down', { signal });
    const stopping = stopWorkloads ? service.lifecycle.stopAllNow() : Promise.resolve(0);
    stopping
      .then(() => service.close())
      .then(() => process.exit(0))
      .catch((err) => {
        logger.error('shutdown failed', { error: err });
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

export async function main(argv: string[]): Promise<void> {
  // Before any subcommand can create the data directory or a file in it: 0700 directories, 0600 files.
  process.umask(0o077);
  // `spawngate admin …` has its own command tree (src/cli/admin) and sets the exit status itself.
  if (argv[2] === 'admin') {
    process.exitCode = await runAdmin(argv.slice(3));
    return;
  }
  // So does `spawngate token …` (src/cli/token.ts).
  if (argv[2] === 'token') {
    process.exitCode = await runToken(argv.slice(3));
    return;
  }
  const program = new Command();
  program.name('spawngate').version(VERSION).description('JupyterHub spawner service and kernel gateway');

  program
    .command('serve')
    .description('run the API and the workers in one process')
    .option('--no-workers', 'API only (workers run in `spawngate worker` processes)')
    .action(async (o: { workers: boolean }) => {
      const cfg = config();
      try {
        const service = await createService(cfg, { workers: o.workers, version: VERSION });
        const port = await service.listen();
        logger.info('spawngate listening', { url: `http://${cfg.env.SPAWNGATE_BIND}:${port}`, backend: cfg.env.SPAWNGATE_BACKEND, database: cfg.env.SPAWNGATE_DATABASE_URL ? 'postgres' : 'embedded', queue: service.queue.kind });
        if (!cfg.env.SPAWNGATE_HUB_TOKEN) logger.warn('SPAWNGATE_HUB_TOKEN is not set: the hub API refuses every request');
        runUntilSignal(service, cfg.env.SPAWNGATE_BACKEND === 'local' && o.workers);
      } catch (err) {
        fatal(err);
      }
    });

  program
    .command('worker')
    .description('run job workers only (needs SPAWNGATE_REDIS_URL)')
    .action(async () => {
      const cfg = config();
      if (!cfg.env.SPAWNGATE_REDIS_URL) fatal(new ConfigError('SPAWNGATE_REDIS_URL: a separate worker needs a Redis queue shared with the API'));
      try {
        const service = await createService(cfg, { api: false, version: VERSION });
        const metricsPort = cfg.env.SPAWNGATE_WORKER_METRICS_PORT === undefined ? undefined : await service.listen();
        logger.info('spawngate worker running', { backend: cfg.env.SPAWNGATE_BACKEND, ...(metricsPort ? { metrics_port: metricsPort } : {}) });
        runUntilSignal(service, false);
      } catch (err) {
        fatal(err);
      }
    });

  program
    .command('migrate')
    .description('apply database migrations and exit')
    .action(async () => {
      const cfg = config();
      try {
        const db = await openDatabase({ databaseUrl: cfg.env.SPAWNGATE_DATABASE_URL, dataDir: cfg.dataDir });
        const applied = await migrate(db);
        await db.close();
        process.stdout.write(applied.length ? `applied: ${applied.map((m) => m.name).join(', ')}\n` : 'database is up to date\n');
      } catch (err) {
        fatal(err);
      }
    });

  program
    .command('sql')
    .description('open a SQL session on the service database (psql when installed)')
    .option('-c, --command <statement>', 'run one statement (or several, separated by ;) and print the result as psql does')
    .option('--no-psql', 'use the built-in line reader even when psql is installed')
    .action(async (o: { command?: string; psql: boolean }) => {
      const cfg = config();
      try {
        process.exitCode = await runSql(cfg, { command: o.command, psql: o.psql });
      } catch (err) {
        fatal(err);
      }
    });

  program
    .command('backup <file>')
    .description('write a SQL dump of all spawngate data to <file> (consistent while the service runs)')
    .action(async (file: string) => {
      const cfg = config();
      try {
        process.stdout.write(await runBackup(cfg, file));
      } catch (err) {
        fatal(err);
      }
    });

  program
    .command('restore <file>')
    .description('load a dump made by `spawngate backup` into the (fresh) database')
    .option('--replace', 'discard the data the database already holds')
    .action(async (file: string, o: { replace?: boolean }) => {
      const cfg = config();
      try {
        process.stdout.write(await runRestore(cfg, file, o));
      } catch (err) {
        fatal(err);
      }
    });

  program.command('token').description('mint (default), list and revoke API tokens acting as a user (spawngate token --help)');

  program
    .command('dry-run')
    .description('print the Pod/Secret manifests the kubernetes backend would create for a user (contacts no API)')
    .requiredOption('--user <name>', 'hub user name')
    .option('--profile <slug>', 'server profile (default: the user\'s default profile)')
    .option('--kernel <name>', 'also a kernel of this kernelspec (reads the experiment quota from the database)')
    .action(async (o: { user: string; profile?: string; kernel?: string }) => {
      const cfg = config();
      try {
        const args = dryRunArgsSchema.parse(o);
        const db = args.kernel === undefined ? undefined : await openDatabase({ databaseUrl: cfg.env.SPAWNGATE_DATABASE_URL, dataDir: cfg.dataDir });
        try {
          process.stdout.write(await renderDryRun(cfg, args, db));
        } finally {
          await db?.close();
        }
      } catch (err) {
        fatal(err);
      }
    });

  program.command('admin').description('administer experiments, environments, members, users; usage and audit (spawngate admin --help)');

  program
    .command('config-doc')
    .description('print the configuration reference as Markdown')
    .action(() => {
      process.stdout.write(renderConfigDoc());
    });

  await program.parseAsync(argv);
}
