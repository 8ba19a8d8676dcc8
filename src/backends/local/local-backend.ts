/**
 * The `local` backend: each workload is a child process on this machine, in its own session and
 * process group (so the whole tree is signalled together), detached from spawngate (so it outlives a
 * spawngate restart). `<stateDir>/<name>.json` records the pid, its start time, ports and labels, which
 * is how a restarted spawngate finds its processes again (and refuses a recycled pid);
 * `<stateDir>/<name>.log` receives stdout and stderr through file descriptors, never a pipe. Whose
 * identity a workload runs with is identity.ts's rule (the owner of the user's home when spawngate is
 * root); the state directory stays spawngate's own (0700), so no workload can list it.
 */
import os from 'node:os';
import fs from 'node:fs';
import path from 'node:path';
import { logger as rootLogger } from '../../logging';
import type { LocalBackend, LocalBackendLogger, LocalBackendOptions } from './options';
import {
  PermanentBackendError,
  TransientBackendError,
  type BackendCapabilities,
  type WorkloadEvent,
  type WorkloadSpec,
  type WorkloadState,
} from '../types';
import { findPrlimit, prepareLaunch, RecentPorts } from './launch';
import { IdentityPolicy } from './identity';
import { ExitLedger } from './exit-ledger';
import { spawnGated } from './spawn-gated';
import { ListenerSet } from '../support/listeners';
import { DEFAULT_STOP_GRACE_SECONDS } from '../types';
import { tailLines } from './log-tail';
import {
  processStatus,
  signalGroup,
  sleep,
  terminateGroup,
  type ProcessIdentity,
} from './process-info';
import { RecordStore, type LocalRecord } from './records';
import { assertValidSpec, assertValidWorkloadName as assertValidName, isValidWorkloadName as isValidName } from '../support/names';
import { exitedState, identityOf, sameProcess } from './workload-state';

export const LOCAL_BACKEND_NAME = 'local';

class LocalProcessBackend implements LocalBackend {
  readonly name = LOCAL_BACKEND_NAME;
  readonly capabilities: BackendCapabilities;
  private readonly store: RecordStore;
  private readonly host: string;
  private readonly log: LocalBackendLogger;
  private readonly prlimit: string | undefined;
  private readonly livenessMs: number;
  private readonly ready: Promise<void>;
  /** Processes this instance spawned, and the exit statuses it reaped. */
  private readonly ledger = new ExitLedger();
  /** Running processes found through their records (spawned by an earlier spawngate); checked by a timer. */
  private readonly adopted = new Map<string, ProcessIdentity>();
  private readonly listeners: ListenerSet;
  private readonly identity: IdentityPolicy;
  private readonly niceIncrement: number;
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
    this.listeners = new ListenerSet(this.log);
    this.identity = new IdentityPolicy(options.identity);
    this.capabilities = { hostProcesses: true, portsSharedAcrossUsers: this.identity.separatesUsers(), signal: true };
    this.niceIncrement = Math.min(19, Math.max(0, Math.trunc(options.niceIncrement ?? 0)));
    this.ready = this.init();
    this.ready.catch(() => undefined); // surfaced by the first call that awaits it
  }

  async ensure(spec: WorkloadSpec, onEvent?: (e: WorkloadEvent) => void): Promise<WorkloadState> {
    assertValidSpec(spec);
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
    const runAs = await this.identity.resolve(spec);
    const launch = await prepareLaunch(spec, this.host, this.prlimit, this.recentPorts, runAs);
    const logFile = await this.store.rotateLog(name);
    onEvent?.({ name, type: 'progress', message: `starting ${path.basename(launch.argv[0]!)}` });

    this.ledger.starting(name);
    this.adopted.delete(name);
    // The exit handler is attached before the record exists; it reads the record once there is one.
    const spawned: { record?: LocalRecord } = {};
    let resolveExited!: () => void;
    const exited = new Promise<void>((resolve) => (resolveExited = resolve));
    const { child, identity, gate } = await spawnGated(
      { wrapper: runAs.wrapper, file: launch.file, args: launch.args, cwd: launch.cwd, env: launch.env, logFile, command: launch.argv[0]! },
      (_id, code, signal) => {
        if (spawned.record) this.onChildExit(spawned.record, code, signal);
        resolveExited();
      },
    );
    const record: LocalRecord = (spawned.record = {
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
      runAs: { uid: runAs.uid, gid: runAs.gid, ...(runAs.user !== undefined ? { user: runAs.user } : {}) },
    });
    child.on('error', (err) => this.log.warn('local workload process error', { name, error: err }));
    this.ledger.spawned(record, exited);
    // Set while the child waits at the gate, so the command and everything it starts inherit it.
    if (this.niceIncrement > 0) lowerPriority(record.pid, this.niceIncrement, this.log);
    try {
      await this.store.write(record);
    } catch (err) {
      gate.destroy();
      signalGroup(identity, 'SIGKILL');
      throw new TransientBackendError(`cannot write record of ${name}: ${(err as Error).message}`, {
        cause: err,
      });
    }
    gate.end('go\n');
    this.log.info('started local workload', {
      name,
      pid: record.pid,
      uid: runAs.uid,
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
    const { exitCode, reason } = this.ledger.reaped(record, code, signal);
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
    const graceMs = Math.max(0, (opts?.graceSeconds ?? DEFAULT_STOP_GRACE_SECONDS) * 1000);
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
            const own = this.ledger.ownChild(record);
            if (own) await Promise.race([own.exited, sleep(1000)]);
          } finally {
            this.stopping.delete(name);
          }
        }
        await this.store.remove(name);
        this.adopted.delete(name);
        this.ledger.forget(name);
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

  async runAs(username: string): Promise<{ uid: number; gid: number; home?: string }> {
    const { uid, gid, home } = await this.identity.resolve({ name: 'identity-check', kind: 'kernel', labels: {}, command: [], env: { KERNEL_USERNAME: username } }, { peek: true });
    return { uid, gid, ...(home ? { home } : {}) };
  }

  /** What the service warns about at start-up when users share one identity (see identity.ts). */
  sharedIdentityWarning(): string | undefined {
    return this.identity.describeShared();
  }

  watch(listener: (e: WorkloadEvent) => void): () => void {
    const unsubscribe = this.listeners.add(listener);
    if (!this.timer && !this.closed) {
      this.timer = setInterval(() => void this.checkAdopted(), this.livenessMs);
      this.timer.unref();
    }
    return () => {
      unsubscribe();
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
    if (!this.closed) this.listeners.emit(e);
  }

  /** The state dir (0700), and the users earlier records were run for (the one-user rule survives restarts). */
  private async init(): Promise<void> {
    await this.store.init();
    for (const name of await this.store.names()) this.identity.remember((await this.readRecord(name))?.runAs?.user);
  }

  /** Remembers a running process this instance did not spawn, for the liveness timer. */
  private track(state: WorkloadState, record: LocalRecord): void {
    if (state.phase === 'running' && !this.ledger.isOwnChild(record.name))
      this.adopted.set(record.name, identityOf(record));
  }

  private readRecord(name: string): Promise<LocalRecord | undefined> {
    return this.store.read(name, (err) =>
      this.log.warn('ignoring unreadable workload record', { name, error: err }),
    );
  }

  private evaluate(record: LocalRecord): Promise<WorkloadState> {
    return this.ledger.evaluate(record, this.store.logPath(record.name));
  }
}

/** A backend running workloads as local child processes; see LocalBackendOptions. */
export function createLocalBackend(options: LocalBackendOptions): LocalBackend {
  return new LocalProcessBackend(options);
}

function lowerPriority(pid: number, increment: number, log: LocalBackendLogger): void {
  const nice = Math.min(19, os.getPriority() + increment);
  try {
    os.setPriority(pid, nice);
  } catch (err) {
    log.warn('cannot lower the priority of a local workload', { pid, error: err });
  }
  // With autogroup scheduling (Linux's default on Debian and most desktops) a process's nice value
  // only weighs against its own session's processes: the workload, in a session of its own (setsid),
  // would still get as much CPU as spawngate's whole session. The session's autogroup carries a nice
  // value of its own; set it too. No such file: autogroup is not compiled in.
  try {
    fs.writeFileSync(`/proc/${pid}/autogroup`, String(nice));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      log.warn('cannot lower the autogroup priority of a local workload', { pid, error: err });
    }
  }
}
