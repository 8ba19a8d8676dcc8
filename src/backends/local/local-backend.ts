/**
 * The `local` backend: each workload is a child process on this machine, in its own session and
 * process group (so the whole tree is signalled together), detached from spawngate (so it outlives a
 * spawngate restart). `<stateDir>/<name>.json` records the pid, its start time, ports and labels, which
 * is how a restarted spawngate finds its processes again (and refuses a recycled pid);
 * `<stateDir>/<name>.log` receives stdout and stderr through file descriptors, never a pipe.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { logger as rootLogger, type Logger } from '../../logging';
import {
  PermanentBackendError,
  TransientBackendError,
  type Backend,
  type WorkloadEvent,
  type WorkloadSpec,
  type WorkloadState,
} from '../types';
import { findPrlimit, prepareLaunch, RecentPorts } from './launch';
import { tailLines } from './log-tail';
import {
  identify,
  processStatus,
  signalGroup,
  sleep,
  terminateGroup,
  type ProcessIdentity,
} from './process-info';
import { assertValidName, isValidName, RecordStore, type LocalRecord } from './records';
import {
  describeExit,
  exitedState,
  identityOf,
  recycledState,
  runningState,
  sameProcess,
} from './workload-state';

export const LOCAL_BACKEND_NAME = 'local';

/** The local backend implements every optional method of `Backend`. */
export type LocalBackend = Backend & Required<Pick<Backend, 'logs' | 'signal' | 'watch'>>;

export type LocalBackendLogger = Pick<Logger, 'debug' | 'info' | 'warn'>;

export interface LocalBackendOptions {
  /** Directory holding `<name>.json` records, `<name>.log` output and lock files. Created (mode 0700) if missing. */
  stateDir: string;
  /** Address workloads listen on and are reported at; free ports are picked on it. Default `127.0.0.1`. */
  host?: string;
  /** Where the backend logs what it does (never environments). Default: spawngate's logger. */
  logger?: LocalBackendLogger;
  /** util-linux `prlimit` used for `memoryLimitMiB`; `false` disables memory limits. Default: found on PATH. */
  prlimit?: string | false;
  /** Seconds between liveness checks of adopted processes while someone watches. Default 1. */
  livenessIntervalSeconds?: number;
  /**
   * Nice increment (0-19) over spawngate's own priority that workloads run at. A burst of starting
   * servers then cannot starve spawngate (and the hub) of CPU, which made their requests time out.
   * Default 0 (the same priority).
   */
  niceIncrement?: number;
}

interface ExitInfo {
  identity: ProcessIdentity;
  exitCode: number;
  reason: string;
}

interface OwnChild {
  record: LocalRecord;
  /** Resolves once Node has reaped the child and `exits` holds its status. */
  exited: Promise<void>;
}

const DEFAULT_GRACE_SECONDS = 5;

/** Waits for the go-ahead on fd 3, closes it, then becomes the command (see `start`). */
const START_GATE = 'read -r _ <&3 || exit 111; exec 3<&-; exec "$@"';

class LocalProcessBackend implements LocalBackend {
  readonly name = LOCAL_BACKEND_NAME;
  readonly capabilities = { hostProcesses: true } as const;
  private readonly store: RecordStore;
  private readonly host: string;
  private readonly log: LocalBackendLogger;
  private readonly prlimit: string | undefined;
  private readonly livenessMs: number;
  private readonly niceIncrement: number;
  private readonly ready: Promise<void>;
  /** Processes this instance spawned and has not yet seen exit. */
  private readonly children = new Map<string, OwnChild>();
  /** Exit statuses of processes this instance reaped. */
  private readonly exits = new Map<string, ExitInfo>();
  /** Running processes found through their records (spawned by an earlier spawngate); checked by a timer. */
  private readonly adopted = new Map<string, ProcessIdentity>();
  private readonly listeners = new Set<(e: WorkloadEvent) => void>();
  /** Ports handed out lately, never offered twice while their workload may still be binding them. */
  private readonly recentPorts = new RecentPorts();
  /** Names whose `stop` is terminating the process right now (their exit status is not persisted). */
  private readonly stopping = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(options: LocalBackendOptions) {
    if (!options.stateDir) throw new PermanentBackendError('local backend: stateDir is required');
    this.store = new RecordStore(path.resolve(options.stateDir));
    this.host = options.host ?? '127.0.0.1';
    this.log = options.logger ?? rootLogger.child({ component: 'backend-local' });
    this.prlimit = options.prlimit === false ? undefined : (options.prlimit ?? findPrlimit());
    this.livenessMs = Math.max(100, (options.livenessIntervalSeconds ?? 1) * 1000);
    this.niceIncrement = Math.min(19, Math.max(0, Math.trunc(options.niceIncrement ?? 0)));
    this.ready = this.store.init();
    this.ready.catch(() => undefined); // surfaced by the first call that awaits it
  }

  async ensure(spec: WorkloadSpec, onEvent?: (e: WorkloadEvent) => void): Promise<WorkloadState> {
    assertValidName(spec?.name);
    await this.ready;
    const name = spec.name;
    return this.store.withLock(name, async () => {
      const existing = await this.readRecord(name);
      if (existing) {
        const current = await this.evaluate(existing);
        if (current.phase === 'running') {
          this.track(current, existing);
          onEvent?.({ name, type: 'progress', message: `adopted running process ${existing.pid}` });
          return current;
        }
        await this.store.remove(name);
      }
      return this.start(spec, onEvent);
    });
  }

  /** Spawns the process and writes its record; the caller holds the lock for `spec.name`. */
  private async start(spec: WorkloadSpec, onEvent?: (e: WorkloadEvent) => void): Promise<WorkloadState> {
    const name = spec.name;
    const launch = await prepareLaunch(spec, this.host, this.prlimit, this.recentPorts);
    const logFile = await this.store.rotateLog(name);
    onEvent?.({ name, type: 'progress', message: `starting ${path.basename(launch.argv[0]!)}` });

    this.exits.delete(name);
    this.adopted.delete(name);
    const fd = openSync(logFile, 'a', 0o600);
    let child: ReturnType<typeof spawn>;
    try {
      // The start gate: a shell waits for one line on fd 3 before exec'ing the command (same pid, same
      // start time). It gets that line only after the record is written, so a spawngate killed in
      // between leaves no unrecorded process: the pipe closes, `read` fails and the shell exits.
      child = spawn('/bin/sh', ['-c', START_GATE, 'spawngate-start-gate', launch.file, ...launch.args], {
        cwd: launch.cwd,
        env: launch.env,
        detached: true, // setsid(): own session and process group, survives spawngate
        stdio: ['ignore', fd, fd, 'pipe'],
      });
    } catch (err) {
      // Synchronous refusals: a NUL byte in an argument or env value, an invalid option.
      throw new PermanentBackendError(`cannot start ${launch.argv[0]}: ${(err as Error).message}`, {
        cause: err,
      });
    } finally {
      closeSync(fd); // the child holds its own copy
    }
    // Read the start time now, synchronously: even a child that already exited is a zombie until the
    // event loop reaps it, so /proc still has it.
    const identity = child.pid ? identify(child.pid) : undefined;
    const record: LocalRecord | undefined = identity && {
      version: 1,
      name,
      kind: spec.kind,
      ...identity,
      startedAt: new Date().toISOString(),
      host: this.host,
      ports: launch.ports,
      labels: { ...spec.labels },
      command: launch.argv,
      workingDir: launch.cwd,
      limits: launch.limits,
    };
    const exited = new Promise<void>((resolve) => {
      child.once('exit', (code, signal) => {
        if (record) this.onChildExit(record, code, signal);
        resolve();
      });
    });
    const spawnError = await new Promise<Error | undefined>((resolve) => {
      child.once('spawn', () => resolve(undefined));
      child.once('error', resolve);
    });
    child.on('error', (err) => this.log.warn('local workload process error', { name, error: err }));
    if (spawnError || !record) {
      const code = (spawnError as NodeJS.ErrnoException | undefined)?.code;
      const message = `cannot start ${launch.argv[0]}: ${spawnError?.message ?? 'no pid'}`;
      if (code === 'ENOENT' || code === 'EACCES' || code === 'ENOTDIR' || code === 'ENOEXEC') {
        throw new PermanentBackendError(message, { cause: spawnError });
      }
      throw new TransientBackendError(message, { cause: spawnError });
    }
    child.unref();
    this.children.set(name, { record, exited });
    const gate = child.stdio[3] as import('node:stream').Writable;
    gate.on('error', () => undefined); // a child that already died closed its end
    // Set while the child waits at the gate, so the command and everything it starts inherit it.
    if (this.niceIncrement > 0) lowerPriority(record.pid, this.niceIncrement, this.log);
    try {
      await this.store.write(record);
    } catch (err) {
      gate.destroy();
      signalGroup(identity!, 'SIGKILL');
      throw new TransientBackendError(`cannot write record of ${name}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    gate.end('go\n');
    this.log.info('started local workload', {
      name,
      pid: record.pid,
      executable: path.basename(launch.argv[0]!),
      ports: record.ports,
      limits: record.limits,
    });
    const state = await this.evaluate(record);
    this.emit({ name, type: 'state', state });
    return state;
  }

  private onChildExit(record: LocalRecord, code: number | null, signal: NodeJS.Signals | null): void {
    const { name } = record;
    const identity = identityOf(record);
    const { exitCode, reason } = describeExit(code, signal);
    const own = this.children.get(name);
    if (own && sameProcess(identityOf(own.record), identity)) this.children.delete(name);
    this.exits.set(name, { identity, exitCode, reason });
    this.log.info('local workload exited', { name, pid: record.pid, reason });
    // Persist the status for a later spawngate, unless the record is being removed or was replaced.
    if (!this.closed && !this.stopping.has(name)) {
      this.persistExit(record, exitCode, reason).catch((err: unknown) =>
        this.log.warn('cannot record exit status', { name, error: err }),
      );
    }
    this.emit({
      name,
      type: 'state',
      state: exitedState(record, this.store.logPath(name), exitCode, reason),
    });
  }

  private async persistExit(record: LocalRecord, exitCode: number, reason: string): Promise<void> {
    const isCurrent = (r: LocalRecord | undefined): r is LocalRecord =>
      !!r && !r.exit && sameProcess(identityOf(r), identityOf(record));
    if (!isCurrent(await this.readRecord(record.name))) return; // no lock needed to do nothing
    await this.store.withLock(record.name, async () => {
      const current = await this.readRecord(record.name);
      if (isCurrent(current))
        await this.store.write({
          ...current,
          exit: { code: exitCode, reason, at: new Date().toISOString() },
        });
    });
  }

  async state(name: string): Promise<WorkloadState> {
    if (!isValidName(name)) return { name: String(name), phase: 'missing', reason: 'invalid workload name' };
    await this.ready;
    const record = await this.readRecord(name);
    if (!record) return { name, phase: 'missing' };
    const state = await this.evaluate(record);
    this.track(state, record);
    return state;
  }

  async list(): Promise<WorkloadState[]> {
    await this.ready;
    const out: WorkloadState[] = [];
    for (const name of await this.store.names()) {
      const record = await this.readRecord(name);
      if (!record) continue;
      const state = await this.evaluate(record);
      this.track(state, record);
      out.push(state);
    }
    return out;
  }

  async stop(name: string, opts?: { graceSeconds?: number }): Promise<void> {
    assertValidName(name);
    await this.ready;
    const graceMs = Math.max(0, (opts?.graceSeconds ?? DEFAULT_GRACE_SECONDS) * 1000);
    const hadRecord = await this.store.withLock(
      name,
      async () => {
        const record = await this.readRecord(name);
        if (record && !record.exit && processStatus(identityOf(record)) === 'alive') {
          this.stopping.add(name);
          try {
            await terminateGroup(identityOf(record), graceMs, () =>
              this.log.info('local workload ignored SIGTERM, sending SIGKILL', {
                name,
                pid: record.pid,
                graceMs,
              }),
            );
            // Let our own child's 'exit' arrive while the lock is held, so nothing writes the record again.
            const own = this.children.get(name);
            if (own && sameProcess(identityOf(own.record), identityOf(record)))
              await Promise.race([own.exited, sleep(1000)]);
          } finally {
            this.stopping.delete(name);
          }
        }
        await this.store.remove(name);
        this.adopted.delete(name);
        this.exits.delete(name);
        return !!record;
      },
      30_000 + graceMs,
    );
    if (hadRecord) this.emit({ name, type: 'state', state: { name, phase: 'missing', reason: 'stopped' } });
  }

  async logs(name: string, lines: number): Promise<string[]> {
    assertValidName(name);
    await this.ready;
    return tailLines(this.store.logPath(name), lines);
  }

  async signal(name: string, sig: NodeJS.Signals): Promise<void> {
    assertValidName(name);
    await this.ready;
    const record = await this.readRecord(name);
    if (!record || record.exit || !signalGroup(identityOf(record), sig)) {
      throw new PermanentBackendError(`workload ${name} is not running`);
    }
  }

  watch(listener: (e: WorkloadEvent) => void): () => void {
    this.listeners.add(listener);
    if (!this.timer && !this.closed) {
      this.timer = setInterval(() => void this.checkAdopted(), this.livenessMs);
      this.timer.unref();
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stopTimer();
    };
  }

  async close(opts?: { stopAll?: boolean }): Promise<void> {
    if (opts?.stopAll) {
      const states = await this.list();
      await Promise.all(states.map((s) => this.stop(s.name)));
    }
    this.closed = true;
    this.stopTimer();
    this.listeners.clear();
  }

  // ——— internals ———

  /** Liveness check of adopted processes (own children report through their 'exit' event). */
  private async checkAdopted(): Promise<void> {
    for (const [name, id] of [...this.adopted]) {
      if (processStatus(id) === 'alive') continue;
      this.adopted.delete(name);
      try {
        this.emit({ name, type: 'state', state: await this.state(name) });
      } catch (err) {
        this.log.warn('liveness check failed', { name, error: err });
      }
    }
  }

  private stopTimer(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private emit(e: WorkloadEvent): void {
    if (this.closed) return;
    for (const listener of this.listeners) {
      try {
        listener(e);
      } catch (err) {
        this.log.warn('workload event listener threw', { name: e.name, error: err });
      }
    }
  }

  /** Remembers a running process this instance did not spawn, for the liveness timer. */
  private track(state: WorkloadState, record: LocalRecord): void {
    if (state.phase === 'running' && !this.children.has(record.name))
      this.adopted.set(record.name, identityOf(record));
  }

  private readRecord(name: string): Promise<LocalRecord | undefined> {
    return this.store.read(name, (err) =>
      this.log.warn('ignoring unreadable workload record', { name, error: err }),
    );
  }

  /** The state a record describes, checked against the live process table. */
  private async evaluate(record: LocalRecord): Promise<WorkloadState> {
    const logFile = this.store.logPath(record.name);
    if (record.exit) return exitedState(record, logFile, record.exit.code, record.exit.reason);
    const id = identityOf(record);
    const reaped = () => {
      const info = this.exits.get(record.name);
      return info && sameProcess(info.identity, id) ? info : undefined;
    };
    let info = reaped();
    if (info) return exitedState(record, logFile, info.exitCode, info.reason);
    const status = processStatus(id);
    if (status === 'alive') return runningState(record, logFile);
    if (status === 'other') return recycledState(record, logFile);
    // Exited. If this instance spawned it, its status is about to arrive through the 'exit' event.
    const own = this.children.get(record.name);
    if (own && sameProcess(identityOf(own.record), id)) await Promise.race([own.exited, sleep(1000)]);
    info = reaped();
    return info
      ? exitedState(record, logFile, info.exitCode, info.reason)
      : exitedState(record, logFile, undefined, 'process disappeared');
  }
}

/** A backend running workloads as local child processes; see LocalBackendOptions. */
function lowerPriority(pid: number, increment: number, log: LocalBackendLogger): void {
  try {
    os.setPriority(pid, Math.min(19, os.getPriority() + increment));
  } catch (err) {
    log.warn('cannot lower the priority of a local workload', { pid, error: err });
  }
}

export function createLocalBackend(options: LocalBackendOptions): LocalBackend {
  return new LocalProcessBackend(options);
}
