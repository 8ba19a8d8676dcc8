/**
 * How a real API server's watches and deletes misbehave, for the stand-in (fake-apiserver.ts calls in
 * here through small hooks):
 * - a watch ends cleanly after its `timeoutSeconds` (what the server does; clients must resume);
 * - bookmarks only on pod watches: the server keeps no watch cache for events, so an events watch gets
 *   none, whatever it asks for;
 * - failure answers on demand: any status (429 with Retry-After, 500, 503…) for the next N requests of
 *   a verb and resource, or an ERROR event followed by a clean close on every new watch;
 * - a silent stall: open watches stop receiving anything (events and bookmarks), their sockets stay open
 *   with the headers sent — a half-open connection as a dead load balancer or node leaves it;
 * - the kubelet on deletes: `ok` (SIGTERM, SIGKILL after the grace, containers reported terminated, then
 *   the object removed), `down` (node unreachable: nothing is killed, the object stays terminating) or
 *   `no-final-delete` (containers killed and reported terminated, but the object is never removed).
 */
import type http from 'node:http';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export type KubeletMode = 'ok' | 'down' | 'no-final-delete';

interface FailRule {
  verb: string;
  resource: string;
  code: number;
  remaining: number;
  retryAfterSeconds?: number;
}

/** One delete request as the stand-in saw it. */
export interface DeleteRecord {
  name: string;
  grace: number;
  /** Whether the pod's process was still running when the delete arrived. */
  containerRunning: boolean;
  /** Whether the pod was already terminating (deletionTimestamp set). */
  terminating: boolean;
  at: number;
}

export interface WatchRecord {
  resource: string;
  timeoutSeconds?: number;
  bookmarks: boolean;
  resourceVersion?: string;
  at: number;
}

function status(code: number, reason: string, message: string): Obj {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

const REASONS: Record<number, string> = { 429: 'TooManyRequests', 500: 'InternalError', 503: 'ServiceUnavailable', 504: 'Timeout' };

export class WatchBehaviour {
  private readonly rules: FailRule[] = [];
  private errorOnWatch = new Map<string, number>();
  kubelet: KubeletMode = 'ok';
  /** Every watch opened, in order. */
  readonly watches: WatchRecord[] = [];
  readonly deletes: DeleteRecord[] = [];
  /** Every authorized request with its time (for backoff and Retry-After assertions). */
  readonly requests: { verb: string; resource: string; at: number; failedWith?: number }[] = [];

  /** The next `count` requests of `verb` on `resource` are answered with `code` (and Retry-After). */
  failNext(verb: string, resource: string, code: number, count = 1, retryAfterSeconds?: number): void {
    this.rules.push({ verb, resource, code, remaining: count, ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}) });
  }

  /** Drops every pending failure rule. */
  clearFailures(): void {
    this.rules.length = 0;
  }

  /** Every new watch of `resource` gets an ERROR event with `code`, then a clean close (undefined: stop). */
  errorWatches(resource: string, code: number | undefined): void {
    if (code === undefined) this.errorOnWatch.delete(resource);
    else this.errorOnWatch.set(resource, code);
  }

  /** Answers the request with a failure if a rule says so; true when it did. */
  intercept(verb: string, resource: string, res: http.ServerResponse): boolean {
    const record: (typeof this.requests)[number] = { verb, resource, at: Date.now() };
    this.requests.push(record);
    const rule = this.rules.find((r) => r.remaining > 0 && r.verb === verb && r.resource === resource);
    if (!rule) return false;
    rule.remaining--;
    record.failedWith = rule.code;
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (rule.retryAfterSeconds !== undefined) headers['retry-after'] = String(rule.retryAfterSeconds);
    res.writeHead(rule.code, headers);
    res.end(JSON.stringify(status(rule.code, REASONS[rule.code] ?? 'InternalError', `the stand-in answers ${rule.code} on purpose`)));
    return true;
  }

  /**
   * Sets a new watch up after its headers went out: records it, applies an ERROR mode, and ends it
   * cleanly after its timeoutSeconds. Returns whether the watch stays open, and whether it gets bookmarks.
   */
  openWatch(resource: string, q: URLSearchParams, res: http.ServerResponse): { open: boolean; bookmarks: boolean } {
    const timeout = q.get('timeoutSeconds');
    const bookmarks = resource === 'pods' && q.get('allowWatchBookmarks') === 'true';
    this.watches.push({
      resource,
      ...(timeout ? { timeoutSeconds: Number(timeout) } : {}),
      bookmarks,
      ...(q.get('resourceVersion') ? { resourceVersion: q.get('resourceVersion')! } : {}),
      at: Date.now(),
    });
    const code = this.errorOnWatch.get(resource);
    if (code !== undefined) {
      res.write(`${JSON.stringify({ type: 'ERROR', object: status(code, REASONS[code] ?? 'InternalError', 'watch failed on purpose') })}\n`);
      res.end();
      return { open: false, bookmarks };
    }
    if (timeout && Number(timeout) > 0) {
      const t = setTimeout(() => res.end(), Number(timeout) * 1000);
      res.on('close', () => clearTimeout(t));
    }
    return { open: true, bookmarks };
  }

  /** A delete as the stand-in saw it (asserted by the delete tests). */
  recordDelete(pod: Obj, grace: number, containerRunning: boolean): void {
    this.deletes.push({ name: pod.metadata.name, grace, containerRunning, terminating: !!pod.metadata.deletionTimestamp, at: Date.now() });
  }
}
