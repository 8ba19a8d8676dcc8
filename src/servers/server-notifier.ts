/**
 * Wakes long-polls and progress streams in this process as soon as a server's state or events change.
 * Other replicas learn the same from the database on their next (short) poll, so this is only a
 * latency shortcut, never the source of truth.
 */
import { EventEmitter } from 'node:events';

export class ServerNotifier {
  private readonly emitter = new EventEmitter();

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  notify(serverId: number): void {
    this.emitter.emit(String(serverId));
  }

  /** Resolves on the next notification for `serverId` or after `ms`, whichever comes first. */
  wait(serverId: number, ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const key = String(serverId);
      const done = (): void => {
        clearTimeout(timer);
        this.emitter.off(key, done);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.emitter.on(key, done);
      signal?.addEventListener('abort', done);
    });
  }
}
