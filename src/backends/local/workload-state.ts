/**
 * Building `WorkloadState` values from a local record: running, exited (with the status this process
 * reaped or a stored one), or missing when the recorded pid now belongs to someone else.
 */
import { constants as osConstants } from 'node:os';
import type { WorkloadState } from '../types';
import type { ProcessIdentity } from './process-info';
import type { LocalRecord } from './records';

export const identityOf = (r: LocalRecord): ProcessIdentity => ({
  pid: r.pid,
  startTime: r.startTime,
  bootId: r.bootId,
});

export const sameProcess = (a: ProcessIdentity, b: ProcessIdentity): boolean =>
  a.pid === b.pid && a.startTime === b.startTime;

/** Exit status and reason from Node's `exit` event; a signal death is 128 + signal number, as in a shell. */
export function describeExit(
  code: number | null,
  signal: NodeJS.Signals | null,
): { exitCode: number; reason: string } {
  if (code !== null) return { exitCode: code, reason: `exited with status ${code}` };
  const num = signal ? (osConstants.signals[signal] ?? 0) : 0;
  return { exitCode: 128 + num, reason: `killed by ${signal ?? 'unknown signal'}` };
}

/** `state.ref`: what identifies the process, where its output is, which limits were applied. */
function refOf(record: LocalRecord, logFile: string): Record<string, unknown> {
  return {
    pid: record.pid,
    startTime: record.startTime,
    bootId: record.bootId,
    startedAt: record.startedAt,
    logFile,
    limits: record.limits,
  };
}

export function runningState(record: LocalRecord, logFile: string): WorkloadState {
  return {
    name: record.name,
    phase: 'running',
    host: record.host,
    ports: record.ports,
    labels: record.labels,
    ref: refOf(record, logFile),
  };
}

export function exitedState(
  record: LocalRecord,
  logFile: string,
  exitCode: number | undefined,
  reason: string,
): WorkloadState {
  return {
    name: record.name,
    phase: 'exited',
    exitCode,
    reason,
    labels: record.labels,
    ref: refOf(record, logFile),
  };
}

/** The recorded pid is alive but is another process (recycled): the workload is gone. */
export function recycledState(record: LocalRecord, logFile: string): WorkloadState {
  return {
    name: record.name,
    phase: 'missing',
    reason: `pid ${record.pid} now belongs to another process`,
    labels: record.labels,
    ref: refOf(record, logFile),
  };
}
