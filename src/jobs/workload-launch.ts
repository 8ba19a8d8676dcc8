/**
 * The launch routine servers and kernels share once a job holds a workload spec: call the backend,
 * capture the workload's last output, wait until it has an address (or exits), recognise a port that
 * was taken under it, follow exits, and list the workloads of one kind for reconciliation. It knows
 * backends only through their contract and capabilities, never their names.
 */
import type { Backend, WorkloadEvent, WorkloadState } from '../backends';
import { sleep } from './common';

/**
 * What a workload prints when a port chosen for it was bound by someone else first: Python's
 * OSError (ipykernel, jupyter_server), jupyter_server's own message, Node's code.
 */
const PORT_TAKEN = /Address already in use|port \d+ is already in use|EADDRINUSE/i;

/** True when `text` (output or an error message) says a port was taken before the workload bound it. */
export function portWasTaken(text: string | readonly string[]): boolean {
  return PORT_TAKEN.test(typeof text === 'string' ? text : text.join('\n'));
}

/** The workload ended (exited, or the backend no longer knows it). */
export function isGone(state: Pick<WorkloadState, 'phase'>): boolean {
  return state.phase === 'exited' || state.phase === 'missing';
}

/** The workload exists and may still serve (running, or on its way). */
export function isAlive(state: Pick<WorkloadState, 'phase'>): boolean {
  return state.phase === 'running' || state.phase === 'pending';
}

/** The last `lines` lines the workload printed; empty when the backend keeps none or cannot say. */
export async function workloadOutput(backend: Backend, name: string, lines: number): Promise<string[]> {
  try {
    return backend.logs ? await backend.logs(name, lines) : [];
  } catch {
    return [];
  }
}

/**
 * Polls the backend from `state` on until `addressed(state)` holds, the workload is gone, or
 * `deadline` (ms since epoch) passes; returns the last state seen. The caller decides what each means.
 */
export async function waitForAddress(
  backend: Backend,
  name: string,
  state: WorkloadState,
  deadline: number,
  addressed: (s: WorkloadState) => boolean,
): Promise<WorkloadState> {
  let current = state;
  while (!addressed(current) && !isGone(current) && Date.now() <= deadline) {
    await sleep(100);
    current = await backend.state(name);
  }
  return current;
}

/** Stops a workload, ignoring failure: used on paths that already report another problem. */
export async function stopQuietly(backend: Backend, name: string, graceSeconds = 1): Promise<void> {
  await backend.stop(name, { graceSeconds }).catch(() => undefined);
}

/**
 * Calls `onExit` for each workload named with `prefix` that the backend reports exited or missing.
 * Returns the unsubscribe function (a no-op when the backend cannot watch).
 */
export function watchExits(backend: Backend, prefix: string, onExit: (state: WorkloadState) => void): () => void {
  const unwatch = backend.watch?.((e: WorkloadEvent) => {
    if (e.type === 'state' && e.state && isGone(e.state) && e.state.name.startsWith(prefix)) onExit(e.state);
  });
  return () => unwatch?.();
}

/** The backend's workloads of one kind (named with `prefix`), for reconciliation. */
export async function listWorkloads(backend: Backend, prefix: string): Promise<WorkloadState[]> {
  return (await backend.list()).filter((w) => w.name.startsWith(prefix));
}

/**
 * Environment a workload that runs as a host process inherits from this service, so that its
 * command resolves (`PATH`) and prints in the same locale; nothing else of the service's environment.
 */
export function hostProcessEnv(source: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  if (source.PATH) env.PATH = source.PATH;
  if (source.LANG) env.LANG = source.LANG;
  return env;
}
