/**
 * Turning the engine's container events into the contract's `state` events: `start`, `die` (with the
 * OOM kill the engine reported just before), `destroy`/`remove` (podman says remove). Each workload's
 * events are handled in order, and an event about an earlier container of the same name (replaced
 * since) is dropped rather than reported about the current one.
 */
import type Docker from 'dockerode';
import type { WorkloadEvent, WorkloadState } from '../types';
import type { LabelKeys } from './container-spec';
import { describeExit } from './container-state';
import type { EngineEvent } from './event-stream';
import type { DockerBackendLogger } from './options';

/** Engine events that change a workload's phase. */
export const WATCHED_ACTIONS = new Set(['start', 'die', 'oom', 'destroy', 'remove']);

export interface TranslatorDeps {
  keys: LabelKeys;
  log: DockerBackendLogger;
  inspect: (name: string) => Promise<Docker.ContainerInspectInfo | undefined>;
  state: (name: string) => Promise<WorkloadState>;
  emit: (e: WorkloadEvent) => void;
  closed: () => boolean;
}

export class EventTranslator {
  /** Per-name queue of event handling, so a workload's events are reported in order. */
  private readonly chains = new Map<string, Promise<void>>();
  /** Containers the engine sent an `oom` event for since their last start (some engines then report OOMKilled=false). */
  private readonly oomSeen = new Set<string>();

  constructor(private readonly d: TranslatorDeps) {}

  onEngineEvent(e: EngineEvent): void {
    const attrs = e.Actor?.Attributes ?? {};
    const action = (e.Action ?? e.status ?? '').split(':')[0] ?? '';
    const name = attrs[this.d.keys.name] ?? attrs.name;
    if (!name || this.d.closed() || !WATCHED_ACTIONS.has(action)) return;
    const eventId = e.Actor?.ID ?? e.id;
    const chain = (this.chains.get(name) ?? Promise.resolve()).then(() => this.handle(name, action, eventId, attrs));
    this.chains.set(name, chain);
    void chain.finally(() => {
      if (this.chains.get(name) === chain) this.chains.delete(name);
    });
  }

  private async handle(name: string, action: string, eventId: string | undefined, attrs: Record<string, string>): Promise<void> {
    const { emit } = this.d;
    if (action === 'destroy' || action === 'remove') {
      // A workload replaced since (restart, stop then start) must not be reported gone because the
      // removal of its predecessor arrived late.
      const current = await this.d.inspect(name).catch(() => undefined);
      if (current && eventId && current.Id !== eventId) return;
      emit({ name, type: 'state', state: { name, phase: 'missing', reason: 'removed' } });
      return;
    }
    if (action === 'oom') {
      this.oomSeen.add(name);
      emit({ name, type: 'progress', message: 'out of memory: the kernel OOM-killed a process' });
      return;
    }
    let state = await this.d.state(name).catch((err: unknown) => {
      this.d.log.warn('cannot inspect container after an event', { name, action, error: err });
      return undefined;
    });
    // An event about an earlier container of that name (the current one has another id): stale.
    const currentId = state?.phase === 'missing' ? undefined : (state?.ref?.id as string | undefined);
    if (currentId && eventId && currentId !== eventId) return;
    if (action === 'start') this.oomSeen.delete(name);
    if (action === 'die' && this.oomSeen.delete(name) && state?.phase === 'exited') state.reason = 'OOMKilled';
    if (action === 'die' && (!state || state.phase !== 'exited')) {
      // Removed already (or replaced): report the exit the event itself carries.
      const code = Number(attrs.exitCode ?? attrs.containerExitCode ?? -1);
      state = { name, phase: 'exited', exitCode: code, reason: describeExit(code), labels: attrs };
    }
    if (state) emit({ name, type: 'state', state });
  }
}
