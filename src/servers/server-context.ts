/**
 * What the parts of the server lifecycle share: dependencies, progress events, and the one way a
 * start fails (state, tokens, event, metrics, log).
 */
import type { Backend } from '../backends';
import type { Config } from '../config';
import { addServerEvent, revokeServerTokens, transitionServer, type Db, type ServerRow } from '../db';
import { workloadOutput, type JobQueue } from '../jobs';
import type { Logger } from '../logging';
import type { Metrics } from '../metrics';
import type { ProfileCatalog } from '../profiles';
import type { ServerNotifier } from './server-notifier';

/** Lines of a server's output kept with a failure. */
const OUTPUT_LINES = 20;

export interface ServerLifecycleDeps {
  db: Db;
  queue: JobQueue;
  backend: Backend;
  config: Config;
  catalog: ProfileCatalog;
  notifier: ServerNotifier;
  metrics: Metrics;
  logger: Logger;
}

export interface ServerContext extends ServerLifecycleDeps {
  log: Logger;
  /** Records a progress event of the row's generation and wakes its listeners. */
  event(row: Pick<ServerRow, 'id' | 'generation'>, progress: number, message: string, extra?: { failed?: boolean; ready?: boolean }): Promise<void>;
  /** Marks a pending or running server failed (once), revoking its tokens. */
  fail(row: ServerRow, message: string, fields?: { exitCode?: number | null; lastOutput?: string[] }): Promise<void>;
  /** The workload's last lines of output (empty when the backend keeps none). */
  outputOf(name: string): Promise<string[]>;
}

export function createServerContext(deps: ServerLifecycleDeps): ServerContext {
  const { db, notifier, metrics } = deps;
  const log = deps.logger.child({ component: 'server-lifecycle' });
  const ctx: ServerContext = {
    ...deps,
    log,
    async event(row, progress, message, extra = {}) {
      await addServerEvent(db, row.id, row.generation, { progress, message, ...extra });
      notifier.notify(row.id);
    },
    async fail(row, message, fields = {}) {
      const updated = await transitionServer(db, row.id, row.generation, ['pending', 'running'], 'failed', {
        message,
        exitCode: fields.exitCode ?? null,
        lastOutput: fields.lastOutput ?? null,
        url: null,
      });
      await revokeServerTokens(db, row.id);
      if (updated) {
        await ctx.event(row, 100, message, { failed: true });
        metrics.spawns.inc({ outcome: 'failed' });
        metrics.spawnDuration.observe({ outcome: 'failed' }, (Date.now() - row.requested_at.getTime()) / 1000);
        log.warn('server start failed', { user: row.username, server: row.server_name, reason: message });
      }
      notifier.notify(row.id);
    },
    outputOf: (name) => workloadOutput(deps.backend, name, OUTPUT_LINES),
  };
  return ctx;
}
