/**
 * What every part of the kernel lifecycle shares: its dependencies, the bridge registry, the port
 * allocator of TCP host kernels, where host kernels' connection files live, and marking a kernel dead.
 * Built once per service by `createKernelService`; the parts (start, launch job, operations, culling)
 * receive it instead of closing over one large function.
 */
import path from 'node:path';
import type { Backend } from '../../backends';
import type { Config } from '../../config';
import { updateKernel, type Db, type KernelRow, type SecretBox } from '../../db';
import type { JobQueue } from '../../jobs';
import type { Logger } from '../../logging';
import type { Metrics } from '../../metrics';
import type { KernelspecCatalog } from '../catalog';
import { BridgeRegistry } from './bridge-registry';
import { connectionInfo, PortAllocator, removeConnectionFile, TRANSPORT_KEY } from './connection-files';
import { generateResponseKeys, type RsaKeys } from './response-address';
import { ipcSocketPrefix, removeKernelRuntime, runtimeRootOf, writeKernelRuntime } from './runtime-dir';

export interface KernelServiceDeps {
  db: Db;
  queue: JobQueue;
  backend: Backend;
  catalog: KernelspecCatalog;
  config: Config;
  secrets: SecretBox;
  logger: Logger;
  /** Refusals and launch durations are counted here. */
  metrics: Metrics;
}

export interface KernelContext extends KernelServiceDeps {
  log: Logger;
  kcfg: Config['file']['kernels'];
  /** Kernels are processes on this host (connection file written here, ports or ipc sockets local). */
  hostProcesses: boolean;
  /** Host kernels talk over ipc in their runtime directory (else TCP on 127.0.0.1). */
  ipc: boolean;
  runtimeRoot: string;
  ports: PortAllocator;
  registry: BridgeRegistry;
  markDead(kernelId: string, reason: string): Promise<void>;
  /** The RSA key pair EG-style launchers encrypt their connection info to; made on first use. */
  responseKeys(): Promise<RsaKeys>;
}

export function createKernelContext(deps: KernelServiceDeps): KernelContext {
  const kcfg = deps.config.file.kernels;
  const log = deps.logger.child({ component: 'kernels' });
  const hostProcesses = deps.backend.capabilities.hostProcesses;
  let keys: Promise<RsaKeys> | undefined;
  const ctx: KernelContext = {
    ...deps,
    log,
    kcfg,
    hostProcesses,
    ipc: hostProcesses && kcfg.host_transport === 'ipc',
    runtimeRoot: runtimeRootOf(deps.config),
    ports: new PortAllocator(kcfg.port_range),
    registry: new BridgeRegistry({
      db: deps.db,
      secrets: deps.secrets,
      logger: deps.logger,
      onDead: (id) => void ctx.markDead(id, 'the kernel stopped answering its heartbeat'),
      clientOptions: { maxBufferedBytes: kcfg.channel_buffer_bytes, slowClientGraceMs: kcfg.slow_client_grace_seconds * 1000 },
    }),
    responseKeys() {
      keys ??= generateResponseKeys();
      return keys;
    },
    async markDead(kernelId, reason) {
      const row = await updateKernel(deps.db, kernelId, { state: 'dead', execution_state: 'dead', message: reason, from: ['running'] }).catch(() => undefined);
      if (row) {
        ctx.registry.broadcast(kernelId, 'dead');
        log.warn('kernel died', { kernel_id: kernelId, user: row.username, reason });
      }
    },
  };
  return ctx;
}

/**
 * The uid/gid a host kernel of `username` runs as. The backend applies its own rule (home owner, or
 * spawngate under a shared identity) and refuses what `ensure` would refuse, so what spawngate prepares
 * for the kernel belongs to exactly the user it runs as.
 */
export async function kernelOwner(ctx: KernelContext, username: string): Promise<{ uid: number; gid: number }> {
  return ctx.backend.runAs ? await ctx.backend.runAs(username) : { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
}

/**
 * Writes a host kernel's connection file into its own runtime directory (0700, the file 0600, both
 * owned by the user the kernel runs as) and returns its path and what `backend_ref` must record. TCP
 * kernels use the same directory as ipc ones: the data directory is spawngate's alone, so a kernel
 * running under its user's uid could not read a file there.
 */
export async function writeHostConnection(ctx: KernelContext, row: KernelRow): Promise<{ file: string; ref: Record<string, unknown> }> {
  const key = ctx.secrets.open(row.key_ciphertext);
  const owner = await kernelOwner(ctx, row.username);
  const info = ctx.ipc ? connectionInfo(ipcSocketPrefix(ctx.runtimeRoot, row.id), row.ports, key, row.kernel_name, 'ipc') : connectionInfo('127.0.0.1', row.ports, key, row.kernel_name);
  const file = await writeKernelRuntime(ctx.runtimeRoot, row.id, owner, JSON.stringify(info));
  return { file, ref: ctx.ipc ? { [TRANSPORT_KEY]: 'ipc' } : {} };
}

/**
 * Removes what `writeHostConnection` made. Idempotent; a no-op for container kernels. The file in the
 * data directory is where TCP kernels launched by earlier versions had theirs.
 */
export async function removeHostConnection(ctx: KernelContext, kernelId: string): Promise<void> {
  if (!ctx.hostProcesses) return;
  await removeKernelRuntime(ctx.runtimeRoot, kernelId).catch(() => undefined);
  if (!ctx.ipc) await removeConnectionFile(path.join(ctx.config.dataDir, 'kernels'), kernelId).catch(() => undefined);
}
