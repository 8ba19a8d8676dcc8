/**
 * The one launch-time check for kernels that would listen on TCP ports of spawngate's host. spawngate's
 * own ipc kernels are walled by their directory (only the kernel's user can enter it); a TCP port has no
 * such wall: any local process, of any user, can connect to 127.0.0.1. Where the backend runs users'
 * workloads under their own identities on one host (`portsSharedAcrossUsers`), that is a hole between
 * tenants, so such launches are refused unless the administrator names the risk and accepts it.
 */
import type { KernelContext } from './kernel-context';
import { usesResponseAddress } from './argv-placeholders';
import { KernelQuotaError } from './errors';

export const TCP_KERNELS_SETTING = 'SPAWNGATE_LOCAL_TCP_KERNELS_OPEN_TO_ALL_USERS';

/** Why a kernel of `argv` would listen on host TCP ports, or undefined when it would not. */
function tcpReason(ctx: KernelContext, argv: readonly string[]): string | undefined {
  if (usesResponseAddress(argv)) return 'it uses an Enterprise Gateway launcher, which listens on TCP ports it picks itself';
  if (ctx.hostProcesses && !ctx.ipc) return "kernels.host_transport is 'tcp'";
  return undefined;
}

/**
 * Throws `KernelQuotaError` (403) when kernelspec `name` would listen on TCP ports other users can
 * reach and the administrator has not accepted that (`SPAWNGATE_LOCAL_TCP_KERNELS_OPEN_TO_ALL_USERS`).
 */
export function assertKernelPortsWalled(ctx: KernelContext, name: string, argv: readonly string[]): void {
  if (!ctx.backend.capabilities.portsSharedAcrossUsers || ctx.config.env.SPAWNGATE_LOCAL_TCP_KERNELS_OPEN_TO_ALL_USERS) return;
  const why = tcpReason(ctx, argv);
  if (why === undefined) return;
  throw new KernelQuotaError(
    `kernelspec '${name}' would listen on TCP ports of this host (${why}); every local user could connect to them and read ` +
      `the kernel's output, so spawngate refuses it while users run under their own identities. An administrator who ` +
      `accepts that risk sets ${TCP_KERNELS_SETTING}=1`,
  );
}
