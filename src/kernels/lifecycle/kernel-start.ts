/**
 * POST /api/kernels up to the queued launch: kernelspec, client env, quota, fair-share limits and the
 * kernel's row, then the launch job and the wait for its outcome. Limits are counted in the database
 * under a per-user (and per-experiment) lock, so stateless replicas enforce them together and two
 * concurrent launches cannot both pass; a launch over a limit is refused before it is queued, so it
 * never takes a worker slot.
 */
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { countLiveKernels, getKernel, insertKernel, livePorts, lockKernelLaunches, updateKernel, type KernelRow } from '../../db';
import { k8sRules } from '../../config';
import { LimitExceededError } from '../../profiles';
import { assertProxyFitsBackend, processProxyOf } from '../kernelspec-process-proxy';
import { portRangeArg, substituteArgv, usesResponseAddress } from './argv-placeholders';
import { CONTAINER_KERNEL_PORTS, newKernelKey } from './connection-files';
import { filterKernelEnv, launchTimeoutFrom } from './env-hygiene';
import { KernelLaunchError, KernelRequestError } from './errors';
import type { KernelContext } from './kernel-context';
import { toKernelModel, type KernelModel } from './kernel-model';
import { kernelImage, kernelWorkloadName } from './kernel-spec';
import { KERNEL_LAUNCH_JOB, type LaunchJobData } from './launch-job';
import { grantFor, type Grant } from './quota-check';
import { IPC_KERNEL_PORTS, assertSocketPathsFit } from './runtime-dir';
import { assertKernelPortsWalled } from './tcp-policy';

/** Seconds a client refused for launches in flight should wait: about one kernel start. */
const IN_FLIGHT_RETRY_SECONDS = 5;
/** Seconds a client refused for a kernel count should wait: kernels end when someone shuts one down. */
const COUNT_RETRY_SECONDS = 30;

/** Throws `LimitExceededError` when one more kernel of `username` would pass a configured limit. */
async function checkLimits(ctx: KernelContext, q: Parameters<typeof countLiveKernels>[0], username: string, grant: Grant, environment: string | null): Promise<void> {
  const { kcfg } = ctx;
  const live = await countLiveKernels(q, username, grant.experimentId);
  if (live.userStarting >= kcfg.max_launches_in_flight_per_user) {
    throw new LimitExceededError(
      `user '${username}' already has ${live.userStarting} kernel launches in flight (kernels.max_launches_in_flight_per_user is ${kcfg.max_launches_in_flight_per_user}); try again when one has started`,
      'kernels.max_launches_in_flight_per_user',
      IN_FLIGHT_RETRY_SECONDS,
    );
  }
  if (live.user >= kcfg.max_kernels_per_user) {
    throw new LimitExceededError(
      `user '${username}' already has ${live.user} kernels running or starting (limit ${kcfg.max_kernels_per_user}, kernels.max_kernels_per_user)`,
      'kernels.max_kernels_per_user',
      COUNT_RETRY_SECONDS,
    );
  }
  if (kcfg.max_kernels_per_experiment !== undefined && grant.experimentId !== null && live.experiment >= kcfg.max_kernels_per_experiment) {
    throw new LimitExceededError(
      `experiment '${grant.experimentName}' already has ${live.experiment} kernels running or starting (limit ${kcfg.max_kernels_per_experiment}, kernels.max_kernels_per_experiment; environment '${environment}')`,
      'kernels.max_kernels_per_experiment',
      COUNT_RETRY_SECONDS,
    );
  }
}

/**
 * A kernel.json's env names the backend would refuse (Kubernetes before 1.32: C identifiers only) are
 * a 400 naming the kernelspec and the variable, before anything is recorded. The client's own env
 * needs no check here: filterKernelEnv passes C identifiers only, which every backend accepts.
 */
async function assertEnvNamesFit(backend: KernelContext['backend'], kernelName: string, env: Record<string, string>): Promise<void> {
  const rule = await backend.envNameRule?.();
  if (!rule) return;
  const problems = k8sRules.envProblems(`kernelspec '${kernelName}' env`, env, rule);
  if (problems.length) throw new KernelRequestError(problems.join('; '));
}

/** Resolves with the running kernel's model (201), or throws a named error. */
export async function startKernel(ctx: KernelContext, username: string, body: { name?: unknown; env?: unknown }): Promise<KernelModel> {
  const { db, queue, backend, config, kcfg, log } = ctx;
  const requested = body.name === undefined || body.name === null || body.name === '' ? undefined : body.name;
  if (requested !== undefined && typeof requested !== 'string') throw new KernelRequestError("'name' must be a kernelspec name");
  const name = requested ?? (await ctx.catalog.list(username)).default;
  const spec = await ctx.catalog.resolve(username, name);
  const proxy = processProxyOf(spec.spec.metadata, spec.name);
  assertProxyFitsBackend(proxy, spec.name, backend.name);
  assertKernelPortsWalled(ctx, spec.name, spec.spec.argv);
  const { env, dropped } = filterKernelEnv(body.env, kcfg.env_allowlist);
  if (dropped.length) log.debug('kernel env variables dropped', { user: username, count: dropped.length });
  await assertEnvNamesFit(backend, spec.name, spec.spec.env);
  const timeoutSeconds = launchTimeoutFrom(env, kcfg.max_launch_timeout_seconds) ?? kcfg.launch_timeout_seconds;
  const grant = await grantFor(db, config, username, spec.environment, spec.name);
  const id = randomUUID();
  const home = path.join(config.env.SPAWNGATE_HOME_ROOT, username);
  const wd = env.KERNEL_WORKING_DIR;
  const workingDir = wd && path.resolve(wd).startsWith(home + path.sep) ? path.resolve(wd) : undefined;
  const tcpHost = ctx.hostProcesses && !ctx.ipc;
  if (ctx.ipc) assertSocketPathsFit(ctx.runtimeRoot, id);
  const kernelPorts = tcpHost ? await ctx.ports.allocate(await livePorts(db, backend.name)) : ctx.ipc ? IPC_KERNEL_PORTS : CONTAINER_KERNEL_PORTS;
  const image = ctx.hostProcesses ? undefined : kernelImage(kcfg, spec.spec.metadata, spec.name, backend.name);
  // EG hands Spark kernels the image their executors run; spawngate starts no executors, it passes it on.
  const executorImage = image === undefined ? undefined : proxy.executorImageName;
  const portRange = proxy.portRange ?? portRangeArg(kcfg.port_range);
  const argv = substituteArgv(spec.spec.argv, { resource_dir: spec.dir, kernel_id: id, port_range: portRange });
  // An EG launcher in a container is its image's own command: the variables EG's kernel pods get
  // (bootstrap-kernel.sh reads them; the response address and key are added per launch).
  const egEnv: Record<string, string> = !ctx.hostProcesses && usesResponseAddress(spec.spec.argv) ? { PORT_RANGE: portRange, KERNEL_LANGUAGE: spec.spec.language } : {};
  const row: KernelRow = await db
    .tx(async (q) => {
      await lockKernelLaunches(q, username, grant.experimentId);
      await checkLimits(ctx, q, username, grant, spec.environment);
      return insertKernel(q, {
        id,
        username,
        kernel_name: spec.name,
        environment: spec.environment,
        experiment_id: grant.experimentId,
        experiment_name: grant.experimentName,
        limits: grant.limits,
        backend: backend.name,
        workload_name: kernelWorkloadName(id),
        ports: kernelPorts,
        key_ciphertext: ctx.secrets.seal(newKernelKey()),
        interrupt_mode: spec.spec.interrupt_mode === 'message' ? 'message' : 'signal',
        launch: { argv, env: { ...spec.spec.env, ...env, ...egEnv, ...(executorImage ? { KERNEL_EXECUTOR_IMAGE: executorImage } : {}) }, workingDir, image },
      });
    })
    .finally(() => {
      // Recorded (or refused): from here the database keeps these ports from being handed out again.
      if (tcpHost) ctx.ports.release(kernelPorts);
    });
  const jobId = `kernel-launch-${id}`;
  try {
    await queue.add<LaunchJobData>(KERNEL_LAUNCH_JOB, { kernelId: id, launchTimeoutMs: timeoutSeconds * 1000 }, { jobId, attempts: 3, backoffMs: 500 });
  } catch (err) {
    // Nothing will launch it: the row must not linger as a phantom kernel counted against limits.
    await updateKernel(db, id, { state: 'failed', execution_state: 'dead', message: `job queue unavailable: ${(err as Error).message}`, from: ['starting'] }).catch(() => undefined);
    throw err;
  }
  const result = await queue.waitFor(jobId, timeoutSeconds * 1000 + 30_000);
  const after = (await getKernel(db, id)) ?? row;
  // EG's model of a kernel just started says `starting` (no status has been relayed yet); the row keeps
  // `idle`, which later reads show, as EG's do once the kernel's first status arrives.
  if (after.state === 'running') return { ...toKernelModel(after), execution_state: 'starting' };
  if (!result) throw new KernelLaunchError(`kernel '${spec.name}' is still starting after ${timeoutSeconds} s`);
  throw new KernelLaunchError(after.message ?? result.error ?? 'kernel launch failed');
}
