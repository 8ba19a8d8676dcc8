/**
 * Keeps open websockets as honest as new requests: a deactivated user, a revoked or expired token, or a
 * server whose token was revoked when it stopped loses its open kernel websockets within a tick (close
 * code 1008, policy violation, with the reason). Replicas are stateless, so the truth is Postgres: each
 * replica re-checks the credentials of all its open sockets in one statement per tick (none when it has
 * none), whichever replica revoked them.
 *
 * What is re-checked: per-user `sg_` tokens (state and owner's `users.active`) and OIDC identities
 * (`users.active` of the user, and the token's `exp`: a JWT cannot be revoked, but it ends, and so does
 * the socket it opened, on the first tick after it, without asking the database). The configured admin
 * and hub tokens change only with the configuration.
 */
import type { WebSocket } from 'ws';
import { credentialStanding, hashToken, TOKEN_PREFIX, type CredentialStanding, type Queryable } from '../../db';
import type { Logger } from '../../logging';
import type { Identity } from './identity';
import { deactivatedMessage } from './resolve-identity';

/** RFC 6455 1008: the endpoint received something that violates its policy (here: a credential no longer holds). */
export const POLICY_VIOLATION = 1008;
/** A close frame's reason is at most 123 bytes of UTF-8. */
const MAX_REASON_BYTES = 123;
/** A peer that does not answer the close handshake is cut after this long. */
const CLOSE_GRACE_MS = 1000;

type Credential = { kind: 'token'; hash: string } | { kind: 'user'; username: string; expiresAt?: number };

/** Why a socket opened with an OIDC token closes when that token ends. */
export const OIDC_TOKEN_EXPIRED = 'the OIDC token that opened this websocket expired; reconnect with a fresh token';

export interface OpenSocketGuardOptions {
  db: Queryable;
  logger: Logger;
  /** How often the open sockets' credentials are re-checked, in ms (default 1000). */
  intervalMs?: number;
}

/** The reason a credential no longer holds, or undefined while it does. */
export function refusal(s: CredentialStanding): string | undefined {
  if (s.status === 'revoked') return 'this token was revoked; ask for a new one';
  if (s.status === 'missing') return 'this token no longer exists (its server was removed)';
  if (s.status === 'expired') return 'this token expired; mint a new one';
  if (s.userActive === false) return deactivatedMessage(s.username ?? '');
  return undefined;
}

/** `text` cut to what a close frame can carry, never inside a character. */
export function closeReason(text: string): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= MAX_REASON_BYTES) return text;
  let end = MAX_REASON_BYTES - 3;
  // Back up to the start of a character (continuation bytes are 10xxxxxx).
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return `${bytes.subarray(0, end).toString('utf8')}...`;
}

/** What to re-check for a socket opened with `token` as `identity`; undefined: nothing can change it. */
function credentialOf(token: string, identity: Identity): Credential | undefined {
  if (identity.kind === 'hub') return undefined;
  if (token.startsWith(TOKEN_PREFIX)) return { kind: 'token', hash: hashToken(token) };
  if (identity.via === 'oidc' && identity.username !== undefined) {
    return { kind: 'user', username: identity.username, ...(identity.expiresAt ? { expiresAt: identity.expiresAt.getTime() } : {}) };
  }
  return undefined;
}

export class OpenSocketGuard {
  private readonly sockets = new Map<WebSocket, Credential>();
  private readonly timer: NodeJS.Timeout;
  private checking?: Promise<void>;

  constructor(private readonly o: OpenSocketGuardOptions) {
    this.timer = setInterval(() => void this.check(), o.intervalMs ?? 1000);
    this.timer.unref();
  }

  /** Watches `ws` (opened with `token`, resolved to `identity`) until it closes. Idempotent per socket. */
  track(ws: WebSocket, token: string, identity: Identity): void {
    const credential = credentialOf(token, identity);
    if (!credential || this.sockets.has(ws)) return;
    this.sockets.set(ws, credential);
    ws.once('close', () => this.sockets.delete(ws));
  }

  /** Sockets watched right now (for tests and metrics). */
  get size(): number {
    return this.sockets.size;
  }

  /**
   * One pass: a single query for every distinct credential, then 1008 for each socket whose credential
   * no longer holds. Passes never overlap (a slow database delays the next one instead of piling up).
   * A database error keeps the sockets open (new upgrades are refused by the database anyway) and is logged.
   */
  check(): Promise<void> {
    this.checking ??= this.pass().finally(() => (this.checking = undefined));
    return this.checking;
  }

  private async pass(): Promise<void> {
    const now = Date.now();
    for (const [ws, c] of this.sockets) {
      if (c.kind === 'user' && c.expiresAt !== undefined && c.expiresAt <= now) this.shut(ws, OIDC_TOKEN_EXPIRED);
    }
    if (this.sockets.size === 0) return;
    const hashes = new Set<string>();
    const usernames = new Set<string>();
    for (const c of this.sockets.values()) {
      if (c.kind === 'token') hashes.add(c.hash);
      else usernames.add(c.username);
    }
    let standings: CredentialStanding[];
    try {
      standings = await credentialStanding(this.o.db, { tokenHashes: [...hashes], usernames: [...usernames] });
    } catch (err) {
      this.o.logger.warn('could not re-check the credentials of open websockets', { error: err });
      return;
    }
    const refused = new Map<string, string>();
    for (const s of standings) {
      const why = refusal(s);
      if (why !== undefined) refused.set(s.key, why);
    }
    if (refused.size === 0) return;
    for (const [ws, c] of this.sockets) {
      const why = refused.get(c.kind === 'token' ? c.hash : c.username);
      if (why !== undefined) this.shut(ws, why);
    }
  }

  private shut(ws: WebSocket, why: string): void {
    this.sockets.delete(ws);
    this.o.logger.info('closing a websocket whose credential no longer holds', { reason: why });
    ws.close(POLICY_VIOLATION, closeReason(why));
    setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
  }

  close(): void {
    clearInterval(this.timer);
    this.sockets.clear();
  }
}
