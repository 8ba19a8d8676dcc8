/**
 * Where kernels that run as host processes talk: ZMQ's `ipc` transport in a per-kernel directory.
 * TCP ports on 127.0.0.1 can be reached by every process of the machine; a Unix socket in a
 * directory only the kernel's user (and spawngate, as root) can enter cannot. Layout:
 *
 *   <runtime root>/            0711, owned by spawngate: others may pass through, never list it
 *     <kernel id>/             0700, owned by the home's owner
 *       c.json                 the connection file, 0600, owned by the home's owner
 *       k-1 … k-5              the kernel's sockets (ipykernel binds `ipc://<ip>-<port>`)
 *
 * TCP host kernels (`kernels.host_transport: tcp`, EG launchers) have a directory too, for their
 * connection file only: it must be readable by the user the kernel runs as and by no one else.
 * The root is not inside the data directory: that one is 0700 and the kernel's user cannot traverse it.
 */
import { promises as fsp } from 'node:fs';
import path from 'node:path';
import type { Config } from '../../config';
import type { KernelPorts } from '../../db';

/** The endpoint suffixes of an ipc kernel (`ipc://<dir>/k-1` …); no port is ever allocated. */
export const IPC_KERNEL_PORTS: KernelPorts = { shell_port: 1, iopub_port: 2, stdin_port: 3, control_port: 4, hb_port: 5 };
/** Longest Unix socket path Linux accepts (sun_path is 108 bytes with its NUL). */
export const MAX_SOCKET_PATH_BYTES = 107;
const CONNECTION_FILE = 'c.json';
const KERNEL_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SOCKET_PREFIX = 'k';

export interface WorkloadIdentity {
  uid: number;
  gid: number;
}

/**
 * Creates the runtime root (0711) or checks the existing one: it must belong to this process's user
 * and be writable by no one else, or a local user could swap a kernel's directory under it.
 */
export async function prepareRuntimeRoot(root: string): Promise<void> {
  await fsp.mkdir(root, { recursive: true, mode: 0o711 });
  const st = await fsp.stat(root);
  const uid = process.getuid?.() ?? st.uid;
  if (st.uid !== uid) throw new Error(`SPAWNGATE_RUNTIME_DIR: ${root} belongs to uid ${st.uid}, not to spawngate (uid ${uid})`);
  // mkdir's mode is reduced by the umask, and an existing directory keeps its own: set it exactly.
  if ((st.mode & 0o777) !== 0o711) await fsp.chmod(root, 0o711);
}

/**
 * `SPAWNGATE_RUNTIME_DIR`, else `<data dir>.run`: beside the data directory (never inside it, since the
 * kernel's user cannot traverse that), absolute, and short enough for socket paths in most layouts.
 */
export function runtimeRootOf(config: Pick<Config, 'env' | 'dataDir'>): string {
  return path.resolve(config.env.SPAWNGATE_RUNTIME_DIR ?? `${config.dataDir}.run`);
}

/** `<root>/<kernel id>`: the kernel's directory. */
export function kernelRuntimeDir(root: string, kernelId: string): string {
  return path.join(root, kernelId);
}

/** `<root>/<kernel id>/c.json`: the connection file a host kernel is started with (`{connection_file}`). */
export function kernelConnectionFile(root: string, kernelId: string): string {
  return path.join(kernelRuntimeDir(root, kernelId), CONNECTION_FILE);
}

/** The `ip` of an ipc kernel's connection info: the socket path prefix inside its directory. */
export function ipcSocketPrefix(root: string, kernelId: string): string {
  return path.join(kernelRuntimeDir(root, kernelId), SOCKET_PREFIX);
}

/** Throws unless every socket path of the kernel fits in a Unix socket address. */
export function assertSocketPathsFit(root: string, kernelId: string): void {
  const longest = `${ipcSocketPrefix(root, kernelId)}-${Math.max(...Object.values(IPC_KERNEL_PORTS))}`;
  if (Buffer.byteLength(longest) > MAX_SOCKET_PATH_BYTES) {
    throw new Error(`SPAWNGATE_RUNTIME_DIR: kernel socket paths under ${root} are ${Buffer.byteLength(longest)} bytes, more than the ${MAX_SOCKET_PATH_BYTES} a Unix socket allows; choose a shorter directory`);
  }
}

/**
 * Makes the kernel's directory (0700) and writes its connection file (0600), both owned by `owner`;
 * returns the file's path. Rewriting (a restart) keeps the directory and replaces the file atomically.
 */
export async function writeKernelRuntime(root: string, kernelId: string, owner: WorkloadIdentity, content: string): Promise<string> {
  const dir = kernelRuntimeDir(root, kernelId);
  await fsp.mkdir(dir, { mode: 0o700 }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  await fsp.chmod(dir, 0o700);
  await fsp.chown(dir, owner.uid, owner.gid);
  const file = kernelConnectionFile(root, kernelId);
  const tmp = `${file}.${process.pid}.tmp`;
  await fsp.writeFile(tmp, content, { mode: 0o600 });
  await fsp.chown(tmp, owner.uid, owner.gid);
  await fsp.rename(tmp, file);
  return file;
}

/** Removes the kernel's directory, sockets and connection file. Idempotent. */
export async function removeKernelRuntime(root: string, kernelId: string): Promise<void> {
  await fsp.rm(kernelRuntimeDir(root, kernelId), { recursive: true, force: true });
}

/** Kernel ids that have a directory under the runtime root (none when the root does not exist). */
export async function kernelRuntimeIds(root: string): Promise<string[]> {
  try {
    return (await fsp.readdir(root, { withFileTypes: true })).filter((e) => e.isDirectory() && KERNEL_ID.test(e.name)).map((e) => e.name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}
