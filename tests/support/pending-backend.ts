/**
 * A container-like backend whose workloads stay `pending` forever (an image "still pulling"): it records
 * every spec it is handed and every name it is asked to stop, so a test sees exactly what spawngate
 * would give a real docker or kubernetes backend, without an engine.
 */
import type { Backend, WorkloadSpec } from '../../src/backends';

export interface PendingBackend {
  backend: Backend;
  /** Specs handed to `ensure`, in order. */
  handed: WorkloadSpec[];
  /** Names passed to `stop`, in order. */
  stopped: string[];
}

export function pendingBackend(opts: { name: string; progress?: string }): PendingBackend {
  const handed: WorkloadSpec[] = [];
  const stopped: string[] = [];
  const backend: Backend = {
    name: opts.name,
    capabilities: { hostProcesses: false, signal: false },
    async ensure(spec, onEvent) {
      handed.push(spec);
      if (opts.progress) onEvent?.({ name: spec.name, type: 'progress', message: opts.progress });
      return { name: spec.name, phase: 'pending' };
    },
    async state(name) {
      return { name, phase: 'pending' };
    },
    async stop(name) {
      stopped.push(name);
    },
    async list() {
      return [];
    },
    async close() {},
  };
  return { backend, handed, stopped };
}
