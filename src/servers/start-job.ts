/**
 * The `server.start` job: mint the server's token, build its spec, start (or adopt) the workload, wait
 * until it has an address and answers HTTP, and record ready or failed with the backend's reason. A
 * port taken under the server retries the job (on another port); a stop that raced the start wins.
 */
import { performance } from 'node:perf_hooks';
import { PermanentBackendError, TransientBackendError, type WorkloadState } from '../backends';
import { beginServerStart, getServer, transitionServer, type ServerRow } from '../db';
import { hostProcessEnv, isGone, portWasTaken, stopQuietly, UnrecoverableJobError, waitForAddress, type JobInfo } from '../jobs';
import type { ServerContext } from './server-context';
import { answersHttp, beforeDeadline, sleep, StartDeadlineError } from './server-readiness';
import { backendStep, PROGRESS, progressText } from './progress-messages';
import { buildServerSpec } from './server-spec';

export const SERVER_START_JOB = 'server.start';
export const START_ATTEMPTS = 3;

export interface StartJobData {
  serverId: number;
  generation: number;
  env: Record<string, string>;
  args: string[];
  startTimeoutSeconds: number;
  /** ms since epoch when the API received the request (for the overhead metric). */
  receivedAt: number;
}

function urlOf(state: WorkloadState): string | undefined {
  const port = state.ports?.default ?? Object.values(state.ports ?? {})[0];
  return state.host && port ? `http://${state.host}:${port}` : undefined;
}

export function startJobHandler(ctx: ServerContext) {
  const { db, backend, metrics, log } = ctx;

  /** Waits until the server answers HTTP, exits, is stopped by someone else, or the deadline passes. */
  async function awaitReady(row: ServerRow, url: string, prefix: string, deadline: number): Promise<'ready' | 'superseded' | { failed: string; exitCode?: number }> {
    let delay = 25;
    for (;;) {
      const current = await getServer(db, row.id);
      if (!current || current.generation !== row.generation || current.state !== 'pending') return 'superseded';
      const state = await backend.state(row.workload_name);
      if (isGone(state)) {
        return { failed: `server ${state.reason ?? (state.phase === 'missing' ? 'disappeared' : 'exited')} before it was ready`, exitCode: state.exitCode };
      }
      if (state.phase === 'running' && (await answersHttp(`${url}${prefix}api`, 2000))) return 'ready';
      if (Date.now() > deadline) return { failed: `server did not answer HTTP within ${Math.round((deadline - row.requested_at.getTime()) / 1000)} s` };
      await sleep(delay);
      delay = Math.min(delay * 2, 250);
    }
  }

  /**
   * The port was free when the backend chose it, but something (often an outgoing connection, which
   * takes ephemeral ports) bound it before the server did: throws so that the job's retry starts the
   * server again on another port. Returns when the output says nothing of the kind (or no retry is left).
   */
  async function retryIfPortTaken(row: ServerRow, output: string[], attempt: number, why: string): Promise<void> {
    if (attempt >= START_ATTEMPTS || !portWasTaken(output)) return;
    await stopQuietly(backend, row.workload_name);
    await ctx.event(row, PROGRESS.retrying, progressText.retryingPort());
    throw new TransientBackendError(`server port taken (${why})`);
  }

  /** Fails the start with the workload's output, unless a retry on another port can help. */
  async function failWithOutput(row: ServerRow, attempt: number, message: string, exitCode?: number | null): Promise<void> {
    const output = await ctx.outputOf(row.workload_name);
    await retryIfPortTaken(row, output, attempt, message);
    await ctx.fail(row, message, { exitCode: exitCode ?? null, lastOutput: output });
    await stopQuietly(backend, row.workload_name);
  }

  return async function handleStart(job: JobInfo<StartJobData>): Promise<void> {
    const data = job.data;
    metrics.queueWait.observe({ job: SERVER_START_JOB }, Math.max(0, Date.now() - job.addedAt) / 1000);
    const begun = await beginServerStart(db, data.serverId, data.generation);
    if (!begun) return;
    const { row, token } = begun;
    const profile = ctx.catalog.forUser(row.username).find((p) => p.slug === row.profile);
    if (!profile) {
      await ctx.fail(row, `profile '${row.profile}' is no longer available to '${row.username}'`);
      return;
    }
    const hostEnv = hostProcessEnv();
    if (process.env.HOME) hostEnv.HOME = process.env.HOME;
    const spec = buildServerSpec(ctx.config, {
      username: row.username,
      serverId: String(row.id),
      workloadName: row.workload_name,
      profile,
      hubEnv: data.env,
      args: data.args,
      gatewayToken: token,
      capabilities: backend.capabilities,
      hostEnv,
    });
    // Progress writes are chained (kept in order) and not awaited before the backend call: they are
    // for the user's eyes and must not delay the start.
    let progressWrites = ctx.event(row, PROGRESS.starting, progressText.starting(backend.name)).catch(() => undefined);
    const overheadMs = performance.timeOrigin + performance.now() - data.receivedAt;
    metrics.startOverhead.observe(overheadMs / 1000);
    log.debug('backend called', { overheadMs, server: row.id });
    const deadline = row.requested_at.getTime() + data.startTimeoutSeconds * 1000;
    let lastProgress: string | undefined;
    let state: WorkloadState;
    const ensuring = backend.ensure(spec, (e) => {
      if (e.type === 'progress' && e.message) {
        const message = backendStep(backend.name, e.message);
        lastProgress = e.message;
        progressWrites = progressWrites.then(() => ctx.event(row, PROGRESS.backendStep, message)).catch(() => undefined);
      }
    });
    try {
      // Bounded by the start deadline: a backend that never answers must not leave the start hanging.
      state = await beforeDeadline(
        ensuring,
        deadline,
        () => `the ${backend.name} backend did not create the server within ${data.startTimeoutSeconds} s${lastProgress ? ` (last: ${lastProgress})` : ''}`,
      );
      await progressWrites;
    } catch (err) {
      await progressWrites;
      if (err instanceof StartDeadlineError) {
        await ctx.fail(row, err.message, { lastOutput: await ctx.outputOf(row.workload_name) });
        await stopQuietly(backend, row.workload_name, 1);
        // The backend may still create it after all: what a failed start leaves must not outlive it.
        void ensuring.then(() => stopQuietly(backend, row.workload_name, 1), () => undefined);
        throw new UnrecoverableJobError(err.message);
      }
      const message = (err as Error).message;
      if (err instanceof PermanentBackendError || job.attempt >= START_ATTEMPTS) {
        await ctx.fail(row, `could not start the server: ${message}`, { lastOutput: await ctx.outputOf(row.workload_name) });
        await stopQuietly(backend, row.workload_name);
        throw new UnrecoverableJobError(message);
      }
      await ctx.event(row, PROGRESS.retrying, progressText.retryingBusy(backend.name, message));
      throw err;
    }
    // A stop that raced the start: remove what we just made.
    const after = await getServer(db, row.id);
    if (!after || after.generation !== row.generation || after.state !== 'pending') {
      await stopQuietly(backend, row.workload_name, 2);
      return;
    }
    await transitionServer(db, row.id, row.generation, ['pending'], 'pending', { backendRef: state.ref ?? null });
    // Pod or container scheduled but not yet addressed: wait for the address.
    state = await waitForAddress(backend, row.workload_name, state, deadline, (s) => urlOf(s) !== undefined);
    const url = urlOf(state);
    if (!url) {
      await failWithOutput(row, job.attempt, `server ${state.reason ?? 'never got an address'}`, state.exitCode);
      return;
    }
    await ctx.event(row, PROGRESS.answering, progressText.answering());
    const prefix = data.env.JUPYTERHUB_SERVICE_PREFIX ?? '/';
    const outcome = await awaitReady(row, url, prefix, deadline);
    if (outcome === 'superseded') return;
    if (outcome !== 'ready') {
      await failWithOutput(row, job.attempt, outcome.failed, outcome.exitCode);
      return;
    }
    const ready = await transitionServer(db, row.id, row.generation, ['pending'], 'running', { url });
    if (!ready) return;
    metrics.spawns.inc({ outcome: 'ready' });
    metrics.spawnDuration.observe({ outcome: 'ready' }, (Date.now() - row.requested_at.getTime()) / 1000);
    await ctx.event(row, PROGRESS.done, progressText.ready(url), { ready: true });
    log.info('server ready', { user: row.username, server: row.server_name, backend: backend.name });
  };
}
