/**
 * What the local backend knows about an operating-system process: whether a pid is alive, its start
 * time (the identity that survives a spawngate restart and tells a recycled pid apart), and signalling
 * a whole process group. Linux reads /proc; elsewhere `ps` stands in for it.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { TransientBackendError } from '../types';

/** Identity of a process: a recycled pid has a different start time (and, after a reboot, boot id). */
export interface ProcessIdentity {
  pid: number;
  /** Start time as the OS reports it (clock ticks since boot on Linux); `null` when it could not be read. */
  startTime: string | null;
  bootId?: string;
}

interface ProcInfo {
  startTime: string;
  /** One-letter state; `Z` is a zombie (dead, not yet reaped) and counts as gone. */
  state: string;
  pgrp?: number;
}

const HAS_PROC = (() => {
  try {
    readFileSync('/proc/self/stat');
    return true;
  } catch {
    return false;
  }
})();

let cachedBootId: string | undefined | null = null;

/** The kernel's boot id on Linux (guards against a pid *and* start time repeating after a reboot). */
export function bootId(): string | undefined {
  if (cachedBootId === null) {
    try {
      cachedBootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim() || undefined;
    } catch {
      cachedBootId = undefined;
    }
  }
  return cachedBootId;
}

/** A pid we may ever signal: a positive integer above 1 (`kill(-1)` or `kill(0)` would hit far too much). */
export function isSafePid(pid: unknown): pid is number {
  return typeof pid === 'number' && Number.isInteger(pid) && pid > 1;
}

/** Synchronous on purpose: called right after spawn, before the event loop can reap an early exit. */
function procInfo(pid: number): ProcInfo | undefined {
  if (!isSafePid(pid)) return undefined;
  if (HAS_PROC) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      return undefined;
    }
    // "pid (comm) S ppid pgrp session … starttime(22) …"; comm may contain spaces and parentheses.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const state = rest[0];
    const startTime = rest[19];
    if (!state || !startTime) return undefined;
    return { state, startTime, pgrp: Number(rest[2]) };
  }
  try {
    const out = execFileSync('ps', ['-o', 'stat=', '-o', 'pgid=', '-o', 'lstart=', '-p', String(pid)], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
    const m = /^(\S+)\s+(\d+)\s+(.+)$/.exec(out);
    if (!m) return undefined;
    return { state: m[1]!.charAt(0), pgrp: Number(m[2]), startTime: m[3]!.trim() };
  } catch {
    return undefined;
  }
}

/** Identity of a live process, read synchronously (use right after spawn). */
export function identify(pid: number): ProcessIdentity {
  return { pid, startTime: procInfo(pid)?.startTime ?? null, bootId: bootId() };
}

/**
 * Where the recorded process stands: `alive` (same start time and boot id, not a zombie), `zombie` (it
 * exited, not yet reaped), `gone` (no such pid), or `other` (the pid now belongs to a different
 * process — recycled — or the record has no start time to prove otherwise).
 */
export type ProcessStatus = 'alive' | 'zombie' | 'gone' | 'other';

export function processStatus(id: ProcessIdentity): ProcessStatus {
  if (!isSafePid(id.pid)) return 'gone';
  const info = procInfo(id.pid);
  if (!info) return 'gone';
  if (id.startTime === null || info.startTime !== id.startTime) return 'other';
  if (id.bootId && bootId() && id.bootId !== bootId()) return 'other';
  return info.state === 'Z' ? 'zombie' : 'alive';
}

/** True when `id` names a live process that really is the one recorded (never a recycled pid). */
export function isSameLiveProcess(id: ProcessIdentity): boolean {
  return processStatus(id) === 'alive';
}

/**
 * True while process group `pgid` has a member that is not a zombie. Zombies are ignored: once the
 * leader is gone, its orphans are reaped by PID 1, which may take a while (or, in a container whose
 * PID 1 does not reap, forever) — they hold no resources worth waiting for.
 */
export function groupAlive(pgid: number): boolean {
  if (!isSafePid(pgid)) return false;
  try {
    process.kill(-pgid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (!HAS_PROC) return true;
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return true;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const info = procInfo(Number(entry));
    if (info && info.pgrp === pgid && info.state !== 'Z') return true;
  }
  return false;
}

/**
 * Signals the process group led by `id.pid` — after checking the leader is still the recorded process
 * and still leads its group; otherwise nothing is signalled (a recycled pid is never touched).
 * Returns false when the process was not there to signal.
 */
export function signalGroup(id: ProcessIdentity, signal: NodeJS.Signals): boolean {
  if (!isSameLiveProcess(id)) return false;
  const leadsGroup = procInfo(id.pid)?.pgrp === id.pid;
  try {
    process.kill(leadsGroup ? -id.pid : id.pid, signal);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/** Sends a signal to the whole group without the identity check — only once the leader was verified. */
export function signalVerifiedGroup(pgid: number, signal: NodeJS.Signals): void {
  if (!isSafePid(pgid)) return;
  try {
    process.kill(-pgid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

const POLL_MS = 50;
const KILL_WAIT_MS = 5_000;

/**
 * Stops the process group led by `id`: SIGTERM, up to `graceMs` for it to end, then SIGKILL to the
 * group and up to 5 s more. Resolves once the leader and every non-zombie member are gone (at once if
 * the recorded process is not running); throws TransientBackendError if something survives SIGKILL.
 */
export async function terminateGroup(
  id: ProcessIdentity,
  graceMs: number,
  onEscalate?: () => void,
): Promise<void> {
  const pgid = id.pid;
  const gone = () => processStatus(id) !== 'alive' && !groupAlive(pgid);
  if (!signalGroup(id, 'SIGTERM')) return;
  const graceEnd = Date.now() + graceMs;
  while (Date.now() < graceEnd) {
    if (gone()) return;
    await sleep(POLL_MS);
  }
  if (gone()) return;
  onEscalate?.();
  // The leader was verified above; if it is gone, members left in its group still get the signal.
  if (!signalGroup(id, 'SIGKILL')) signalVerifiedGroup(pgid, 'SIGKILL');
  const killEnd = Date.now() + KILL_WAIT_MS;
  while (!gone()) {
    if (Date.now() > killEnd) throw new TransientBackendError(`process group ${pgid} survived SIGKILL`);
    await sleep(POLL_MS);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
