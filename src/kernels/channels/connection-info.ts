/**
 * The Jupyter connection file (`kernel-<id>.json`): where a kernel's five ZMQ channels listen and
 * the key that signs its messages. Parsed with zod so a record read back from Postgres or a file
 * written by a launcher is checked once, at the edge.
 */
import { z } from 'zod';

const port = z.number().int().min(1).max(65535);

export const kernelConnectionInfoSchema = z.object({
  ip: z.string().min(1).describe('address the kernel binds (tcp) or the ipc path prefix; e.g. 127.0.0.1'),
  transport: z.enum(['tcp', 'ipc']).default('tcp').describe("ZMQ transport; 'tcp' (default) or 'ipc'"),
  shell_port: port.describe('shell channel port (ROUTER on the kernel side)'),
  iopub_port: port.describe('iopub channel port (PUB on the kernel side)'),
  stdin_port: port.describe('stdin channel port (ROUTER on the kernel side)'),
  control_port: port.describe('control channel port (ROUTER on the kernel side)'),
  hb_port: port.describe('heartbeat port (echo on the kernel side)'),
  key: z
    .string()
    .describe("HMAC key signing every message; '' disables signing (never do that in production)"),
  signature_scheme: z
    .literal('hmac-sha256')
    .default('hmac-sha256')
    .describe("message signature scheme; only 'hmac-sha256' is supported"),
  kernel_name: z.string().default('').describe("kernelspec name the kernel was started from; default ''"),
});

/** A parsed connection file. */
export type KernelConnectionInfo = z.output<typeof kernelConnectionInfoSchema>;

/** The five ZMQ channels of a kernel. */
export type ZmqChannel = 'shell' | 'iopub' | 'stdin' | 'control' | 'hb';

/**
 * Validates a connection file's content (an object, or its JSON text). Throws a `ZodError` naming
 * the bad field; unknown fields are dropped.
 */
export function parseConnectionInfo(value: unknown): KernelConnectionInfo {
  return kernelConnectionInfoSchema.parse(typeof value === 'string' ? JSON.parse(value) : value);
}

/** The ZMQ address of one channel, as jupyter_client builds it (`tcp://ip:port`, `ipc://ip-port`). */
export function channelAddress(info: KernelConnectionInfo, channel: ZmqChannel): string {
  const p = info[`${channel}_port`];
  return info.transport === 'ipc' ? `ipc://${info.ip}-${p}` : `tcp://${formatHost(info.ip)}:${p}`;
}

function formatHost(ip: string): string {
  return ip.includes(':') && !ip.startsWith('[') ? `[${ip}]` : ip;
}

/**
 * ZMQ_CONNECT_TIMEOUT for every socket to a kernel. ZMQ reconnects by itself when a kernel restarts on
 * the same ports, but one connect attempt whose SYN goes unanswered (seen when it lands while the old
 * process's listener is closing) would otherwise wait out the OS's SYN retries, tens of seconds; with
 * this bound the attempt is abandoned and retried after the reconnect interval.
 */
export const KERNEL_CONNECT_TIMEOUT_MS = 2000;
