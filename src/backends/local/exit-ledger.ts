/**
 * What this spawngate process knows about its own children's exits: which workloads it spawned and has
 * not yet seen exit, and the statuses it reaped (a status is only known to the process that reaped
 * it; records persist it for later instances). `evaluate` turns a record into its current state,
 * checked against the live process table.
 */
import type { WorkloadState } from '../types';
import { processStatus, sleep, type ProcessIdentity } from './process-info';
import type { LocalRecord } from './records';
import { describeExit, exitedState, identityOf, recycledState, runningState, sameProcess } from './workload-state';

interface ExitInfo {
  identity: ProcessIdentity;
  exitCode: number;
  reason: string;
}

interface OwnChild {
  record: LocalRecord;
  /** Resolves once Node has reaped the child and its status is in the ledger. */
  exited: Promise<void>;
}

export class ExitLedger {
  private readonly children = new Map<string, OwnChild>();
  private readonly exits = new Map<string, ExitInfo>();

  /** A new process of `name` is being started: an earlier status no longer describes it. */
  starting(name: string): void {
    this.exits.delete(name);
  }

  spawned(record: LocalRecord, exited: Promise<void>): void {
    this.children.set(record.name, { record, exited });
  }

  isOwnChild(name: string): boolean {
    return this.children.has(name);
  }

  /** Our child of that record, if this instance spawned exactly that process. */
  ownChild(record: LocalRecord): OwnChild | undefined {
    const own = this.children.get(record.name);
    return own && sameProcess(identityOf(own.record), identityOf(record)) ? own : undefined;
  }

  /** Records Node's `exit` event of our child; returns the status as the contract reports it. */
  reaped(record: LocalRecord, code: number | null, signal: NodeJS.Signals | null): { exitCode: number; reason: string } {
    const identity = identityOf(record);
    const status = describeExit(code, signal);
    if (this.ownChild(record)) this.children.delete(record.name);
    this.exits.set(record.name, { identity, ...status });
    return status;
  }

  forget(name: string): void {
    this.exits.delete(name);
  }

  /** The state a record describes, checked against the live process table. */
  async evaluate(record: LocalRecord, logFile: string): Promise<WorkloadState> {
    if (record.exit) return exitedState(record, logFile, record.exit.code, record.exit.reason);
    const id = identityOf(record);
    const known = () => {
      const info = this.exits.get(record.name);
      return info && sameProcess(info.identity, id) ? info : undefined;
    };
    let info = known();
    if (info) return exitedState(record, logFile, info.exitCode, info.reason);
    const status = processStatus(id);
    if (status === 'alive') return runningState(record, logFile);
    if (status === 'other') return recycledState(record, logFile);
    // Exited. If this instance spawned it, its status is about to arrive through the 'exit' event.
    const own = this.ownChild(record);
    if (own) await Promise.race([own.exited, sleep(1000)]);
    info = known();
    return info
      ? exitedState(record, logFile, info.exitCode, info.reason)
      : exitedState(record, logFile, undefined, 'process disappeared');
  }
}
