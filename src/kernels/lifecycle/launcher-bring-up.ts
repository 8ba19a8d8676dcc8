/**
 * Bringing up a kernel whose Enterprise Gateway launcher reports its own connection info
 * (`{response_address}` in argv), on any backend: a response listener for this launch, the workload,
 * the report from an authenticated peer, then the probe. Where the listener is and who may answer:
 * - local: 127.0.0.1, and only a process of the uid the kernel runs as (its owner in /proc/net/tcp);
 *   when that can no longer be read (the launcher closed at once), only a payload whose key and ports
 *   equal those of a connection file in the kernel's own directory (launcher-file-proof.ts): `{connection_file}`,
 *   or the launcher's temporary file, there because its TMPDIR is that directory;
 * - containers: `kernels.response_address`, else the address the backend says its workloads reach
 *   this host at (docker: the gateway of the user's network), else this host's first non-loopback
 *   IPv4 (a worker pod's IP); and only the kernel's own container or pod (the connection's source
 *   address is the workload's address as its backend reports it). The kernel is then reached at that
 *   address too, never at the `ip` the payload names.
 */
import net from 'node:net';
import os from 'node:os';
import { updateKernel, updateKernelKey, type KernelRow } from '../../db';
import { hostProcessEnv, isAlive, isGone } from '../../jobs';
import { namesConnectionFile, substituteArgv } from './argv-placeholders';
import { ensureKernelWorkload, outputOf, probe, sleep, type ReachedKernel } from './bring-up-support';
import { kernelAddress, LAUNCHER_COMM_KEY, LAUNCHER_REPORTED_KEY, REACHED_PORTS_KEY } from './connection-files';
import { KernelLaunchError } from './errors';
import { kernelOwner, writeHostConnection, type KernelContext } from './kernel-context';
import { launcherFilesVouch, type LauncherFiles } from './launcher-file-proof';
import { loopbackUidCheck, ResponseListener, TRUSTED, type LauncherReport, type ResponseListenerOptions } from './response-address';
import { kernelConnectionFile, kernelRuntimeDir } from './runtime-dir';

/** Why version-0 payloads are refused from containers (they are accepted on loopback, which only root can watch). */
export const VERSION0_REFUSED =
  "the kernel's launcher sent a version-0 (Enterprise Gateway 1.x) payload, which carries the kernel's key readable by anyone who sees the traffic; spawngate accepts those only from local kernels — use a launcher from Enterprise Gateway 2.0 or later in this image";

function firstExternalIPv4(): string | undefined {
  for (const list of Object.values(os.networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return undefined;
}

/** Where this launch listens and whom it believes (see the module comment). */
async function listenerOptions(ctx: KernelContext, row: KernelRow): Promise<ResponseListenerOptions> {
  if (ctx.hostProcesses) {
    const { uid } = await kernelOwner(ctx, row.username);
    // `{connection_file}` is c.json there (writeHostConnection), which EG's Python launcher rewrites before it
    // reports; without it (and always for EG's R launcher) the launcher writes a temporary file, there too
    // since its TMPDIR is that directory (bringUpLauncher).
    const where: LauncherFiles = {
      dir: kernelRuntimeDir(ctx.runtimeRoot, row.id),
      kernelId: row.id,
      ...(namesConnectionFile(row.launch.argv) ? { connectionFile: kernelConnectionFile(ctx.runtimeRoot, row.id) } : {}),
    };
    return { bind: '127.0.0.1', advertised: '127.0.0.1', authenticate: loopbackUidCheck(uid), vouch: launcherFilesVouch(where, uid) };
  }
  const advertised = ctx.kcfg.response_address ?? (await ctx.backend.hostAddressFor?.(row.username)) ?? firstExternalIPv4();
  if (!advertised) throw new KernelLaunchError('no address for Enterprise Gateway launchers to report to: set kernels.response_address');
  // Learnt once per launch (a flood of connections costs no backend calls after the first answer).
  let known: string | undefined;
  const workloadAddress = async (): Promise<string | undefined> => {
    // The payload can arrive before a watch-fed cache (kubernetes) has seen the pod running.
    for (let i = 0; i < 50 && known === undefined; i++) {
      const s = await ctx.backend.state(row.workload_name);
      if (s.address) known = s.address;
      else if (isGone(s)) return undefined;
      else await sleep(100);
    }
    return known;
  };
  return {
    bind: advertised,
    advertised,
    refuseVersion0: VERSION0_REFUSED,
    async authenticate(peer) {
      const own = await workloadAddress();
      return own !== undefined && own === peer.address ? TRUSTED : { verdict: 'refused', reason: `a payload came from ${peer.address}, not from the kernel's workload (${own ?? 'no address yet'})` };
    },
  };
}

/** The recorded report of an earlier attempt, when its workload still runs: the kernel is adopted. */
async function adoptReported(ctx: KernelContext, row: KernelRow, deadline: number, timeoutMs: number): Promise<ReachedKernel | undefined> {
  const state = await ctx.backend.state(row.workload_name);
  if (row.backend_ref?.[LAUNCHER_REPORTED_KEY] === true && state.phase === 'running') {
    const at = kernelAddress(row);
    const reached: ReachedKernel = { host: at.host, ports: at.ports, transport: 'tcp' };
    ctx.log.info('kernel launch retried after its launcher reported: adopting the running kernel', { kernel_id: row.id });
    await probe(ctx, row, reached, ctx.secrets.open(row.key_ciphertext), deadline, timeoutMs, () => '');
    return reached;
  }
  // Its launcher reports to a listener that is gone and will not report again: start afresh.
  if (isAlive(state)) {
    ctx.log.info('kernel launch retried before its launcher reported: replacing the workload', { kernel_id: row.id });
    await ctx.backend.stop(row.workload_name, { graceSeconds: 1 });
    await ctx.registry.release(row.id); // a bridge to the replaced kernel would call the new one dead
  }
  return undefined;
}

export async function bringUpLauncher(ctx: KernelContext, row: KernelRow, timeoutMs: number, retry: boolean): Promise<ReachedKernel> {
  const { backend, db } = ctx;
  const deadline = Date.now() + timeoutMs;
  if (retry) {
    const adopted = await adoptReported(ctx, row, deadline, timeoutMs);
    if (adopted) return adopted;
  }
  const keys = await ctx.responseKeys();
  const listener = await ResponseListener.open(keys, row.id, await listenerOptions(ctx, row));
  try {
    const host = ctx.hostProcesses ? await writeHostConnection(ctx, row) : undefined;
    const { state, lastSeen } = await ensureKernelWorkload(
      ctx,
      row,
      {
        argv: substituteArgv(row.launch.argv, { response_address: listener.address, public_key: keys.publicKey }),
        placement: host
          ? // Its temporary connection file, if it makes one, lands in the kernel's private directory (kernel-spec.ts).
            { hostProcesses: true, connectionFile: host.file, hostEnv: hostProcessEnv(), tmpDir: kernelRuntimeDir(ctx.runtimeRoot, row.id) }
          : { hostProcesses: false, responseAddress: listener.address, publicKey: keys.publicKey },
      },
      deadline,
      timeoutMs,
    );
    const report = await launcherReport(ctx, row, listener, deadline, timeoutMs);
    ctx.log.info('kernel launcher reported', { kernel_id: row.id, user: row.username, believed_by: listener.proof });
    // A local launcher may name the loopback address it bound; a container is reached at its own address.
    const at = ctx.hostProcesses ? (report.ip && report.ip !== '0.0.0.0' && net.isIP(report.ip) ? report.ip : '127.0.0.1') : ((await backend.state(row.workload_name)).address ?? state.address ?? state.host);
    const reached: ReachedKernel = { host: at, ports: report.ports, transport: 'tcp' };
    await updateKernelKey(db, row.id, ctx.secrets.seal(report.key));
    const ref = {
      ...(state.ref ?? {}),
      [REACHED_PORTS_KEY]: reached.ports,
      [LAUNCHER_REPORTED_KEY]: true,
      ...(report.commPort > 0 ? { [LAUNCHER_COMM_KEY]: { host: at, port: report.commPort } } : {}),
    };
    await updateKernel(db, row.id, { host: reached.host, backend_ref: ref });
    await probe(ctx, row, reached, report.key, deadline, timeoutMs, lastSeen);
    return reached;
  } finally {
    await listener.close();
  }
}

/** Waits for the launcher's connection info; fails when the workload exits first, its launcher sends a bad payload, or the deadline passes. */
async function launcherReport(ctx: KernelContext, row: KernelRow, listener: ResponseListener, deadline: number, timeoutMs: number): Promise<LauncherReport> {
  let settled = false;
  const exited = (async (): Promise<never> => {
    for (;;) {
      await sleep(100);
      if (settled) return new Promise<never>(() => undefined);
      const s = await ctx.backend.state(row.workload_name);
      if (isGone(s)) throw new KernelLaunchError(`kernel launcher ${s.reason ?? 'exited'} before it sent its connection info${await outputOf(ctx, row.workload_name)}`);
      if (Date.now() >= deadline) {
        const why = listener.rejection ? ` (a payload was refused: ${listener.rejection})` : '';
        throw new KernelLaunchError(`kernel launcher sent no connection info within ${Math.round(timeoutMs / 1000)} s${why}`);
      }
    }
  })();
  try {
    return await Promise.race([
      listener.report.catch((err: Error) => {
        throw new KernelLaunchError(`kernel launcher sent unusable connection info: ${err.message}`);
      }),
      exited,
    ]);
  } finally {
    settled = true;
  }
}
