/**
 * Spawning one local workload behind a start gate: a shell (optionally behind `setpriv`, which switches
 * to the user's identity) waits for one line on fd 3 before exec'ing the command — same pid, same start
 * time throughout. The caller sends that line only after writing the workload's record, so a spawngate
 * killed in between leaves no unrecorded process: the pipe closes, `read` fails and the shell exits.
 * Output goes to a log file spawngate opened and passes as a file descriptor: the workload can write
 * to it without being able to open anything in the backend's private state directory.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { PermanentBackendError, TransientBackendError } from '../types';
import { identify, type ProcessIdentity } from './process-info';

/**
 * Waits for the go-ahead on fd 3, closes it, then becomes the command. The shell exports a PWD of its
 * own; it is dropped so that the command's environment is exactly the spec's.
 */
const START_GATE = 'read -r _ <&3 || exit 111; exec 3<&-; exec "$@"';
const START_GATE_NO_PWD = 'read -r _ <&3 || exit 111; exec 3<&-; unset PWD; exec "$@"';

export interface GatedLaunch {
  /** argv prefix switching identity (`setpriv … --`), or empty. */
  wrapper: string[];
  file: string;
  args: string[];
  cwd: string;
  env: Record<string, string>;
  logFile: string;
  /** For messages: the command as the user wrote it. */
  command: string;
}

export interface GatedChild {
  child: ChildProcess;
  identity: ProcessIdentity;
  /** Write one line to let the command run; destroy to make it exit. */
  gate: Writable;
}

const PERMANENT_SPAWN = new Set(['ENOENT', 'EACCES', 'ENOTDIR', 'ENOEXEC']);

/**
 * Spawns the gated process in its own session (it outlives spawngate). `onExit` is attached before the
 * process can exit. Resolves once the OS started it; throws Permanent/TransientBackendError otherwise.
 */
export async function spawnGated(
  launch: GatedLaunch,
  onExit: (identity: ProcessIdentity | undefined, code: number | null, signal: NodeJS.Signals | null) => void,
): Promise<GatedChild> {
  const [file, ...prefix] = [...launch.wrapper, '/bin/sh'];
  const fd = openSync(launch.logFile, 'a', 0o600);
  let child: ChildProcess;
  try {
    const gateScript = launch.env.PWD === undefined ? START_GATE_NO_PWD : START_GATE;
    child = spawn(file!, [...prefix, '-c', gateScript, 'spawngate-start-gate', launch.file, ...launch.args], {
      cwd: launch.cwd,
      env: launch.env,
      detached: true, // setsid(): own session and process group, survives spawngate
      stdio: ['ignore', fd, fd, 'pipe'],
    });
  } catch (err) {
    // Synchronous refusals: a NUL byte in an argument or env value, an invalid option.
    throw new PermanentBackendError(`cannot start ${launch.command}: ${(err as Error).message}`, { cause: err });
  } finally {
    closeSync(fd); // the child holds its own copy
  }
  // Read the start time now, synchronously: even a child that already exited is a zombie until the
  // event loop reaps it, so /proc still has it.
  const identity = child.pid ? identify(child.pid) : undefined;
  child.once('exit', (code, signal) => onExit(identity, code, signal));
  const spawnError = await new Promise<Error | undefined>((resolve) => {
    child.once('spawn', () => resolve(undefined));
    child.once('error', resolve);
  });
  if (spawnError || !identity) {
    const code = (spawnError as NodeJS.ErrnoException | undefined)?.code;
    const message = `cannot start ${launch.command}: ${spawnError?.message ?? 'no pid'}`;
    if (code && PERMANENT_SPAWN.has(code)) throw new PermanentBackendError(message, { cause: spawnError });
    throw new TransientBackendError(message, { cause: spawnError });
  }
  child.unref();
  const gate = child.stdio[3] as Writable;
  gate.on('error', () => undefined); // a child that already died closed its end
  return { child, identity, gate };
}
