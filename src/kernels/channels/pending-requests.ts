/**
 * Requests spawngate sends from its own session (kernel_info, interrupt, shutdown), waiting for the
 * reply whose `parent_header.msg_id` is theirs. A request may be re-sent under new msg_ids; any of
 * them answers it. Each call owns its timeout; `rejectAll` fails what is left on close.
 */
import { randomUUID } from 'node:crypto';
import { KernelTimeoutError } from './errors';
import type { JupyterMessage } from './wire';

interface Pending {
  resolve(msg: JupyterMessage): void;
  reject(err: Error): void;
}

export interface TrackOptions {
  msgType: string;
  timeoutMs: number;
  /** Re-send period, ms; none when omitted or not shorter than the timeout. */
  resendMs?: number;
  kernelId?: string;
  /** Sends the request under the given msg_id. */
  send(msgId: string): void;
}

export class PendingRequests {
  private readonly byMsgId = new Map<string, Pending>();

  track(options: TrackOptions): Promise<JupyterMessage> {
    return new Promise<JupyterMessage>((resolve, reject) => {
      const ids: string[] = [];
      let resendTimer: NodeJS.Timeout | undefined;
      const finish = (): void => {
        clearTimeout(timer);
        if (resendTimer) clearInterval(resendTimer);
        for (const id of ids) this.byMsgId.delete(id);
      };
      const entry: Pending = {
        resolve: (msg) => {
          finish();
          resolve(msg);
        },
        reject: (err) => {
          finish();
          reject(err);
        },
      };
      const timer = setTimeout(
        () => entry.reject(new KernelTimeoutError(options.msgType, options.timeoutMs, options.kernelId)),
        options.timeoutMs,
      );
      const send = (): void => {
        const msgId = randomUUID();
        ids.push(msgId);
        this.byMsgId.set(msgId, entry);
        options.send(msgId);
      };
      send();
      if (options.resendMs !== undefined && options.resendMs < options.timeoutMs) {
        resendTimer = setInterval(send, options.resendMs);
      }
    });
  }

  has(msgId: string | undefined): boolean {
    return msgId !== undefined && this.byMsgId.has(msgId);
  }

  /** Answers the request `msgId` belongs to; false when it is not (or no longer) pending. */
  resolve(msgId: string, msg: JupyterMessage): boolean {
    const entry = this.byMsgId.get(msgId);
    entry?.resolve(msg);
    return entry !== undefined;
  }

  rejectAll(err: Error): void {
    for (const entry of new Set(this.byMsgId.values())) entry.reject(err);
    this.byMsgId.clear();
  }
}
