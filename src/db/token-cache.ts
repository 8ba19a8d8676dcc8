/**
 * Token lookups answered from memory while Postgres can tell this process about every change that
 * would make a remembered answer wrong.
 *
 * Every request with a per-user token used to cost one indexed query (a third of a cached listing's
 * CPU, plus Postgres's own). JupyterHub caches token checks for minutes; spawngate may not: a token
 * revoked by the API, by a server's stop or by an administrator's SQL, and a user deactivated, must be
 * refused at once on every replica. So:
 * - only a 'valid' answer is remembered (never "unknown", never "revoked"), for at most `maxAgeMs`,
 *   and never past the token's own expiry minus `expiryMarginMs` (clocks of database and host differ);
 * - migration 019's triggers notify `spawngate_credentials` with the user name on every change to a
 *   token row or a users row; a notification forgets that user's answers (an empty one, everything);
 * - answers are used only while the channel is live (db/listen.ts: connected, LISTEN done, heartbeat
 *   answering); when it is not, every lookup goes to Postgres and everything remembered is forgotten;
 * - an answer read from Postgres is remembered only if no notification or loss arrived while it was
 *   being read (the read may have seen the row before the change the notification announces).
 * A revocation therefore reaches every replica as fast as Postgres delivers a notification (about a
 * millisecond here); a replica that cannot hear them stops caching within `heartbeat + timeout` (3 s).
 *
 * Not wired into the service: that millisecond is a window in which a request sent right after an
 * administrator's UPDATE still passes, and spawngate promises the very next request is refused
 * (tests/tenancy/tokens.test.ts caught it). Kept, with its tests, for a design that closes the window.
 */
import type { Logger } from '../logging';
import { hashToken, lookupToken, lookupTokenHash, TOKEN_PREFIX, type TokenLookup } from './tokens';
import type { ChannelSubscription, Db } from './types';

export const CREDENTIALS_CHANNEL = 'spawngate_credentials';

export interface TokenLookupCacheOptions {
  logger: Logger;
  /** Upper bound on how long an answer is kept even without any notification. Default 60 s. */
  maxAgeMs?: number;
  /** A token is not answered from memory this close to its expiry. Default 5 s. */
  expiryMarginMs?: number;
  /** Entries kept (oldest forgotten first). Default 100,000. */
  maxEntries?: number;
  now?: () => number;
}

export interface TokenLookupCache {
  lookup(token: string): Promise<TokenLookup | undefined>;
  /** Whether answers may currently come from memory (the channel is live). */
  readonly caching: boolean;
  close(): Promise<void>;
}

interface Entry {
  value: TokenLookup;
  until: number;
}

export function createTokenLookupCache(db: Db, o: TokenLookupCacheOptions): TokenLookupCache {
  const maxAgeMs = o.maxAgeMs ?? 60_000;
  const marginMs = o.expiryMarginMs ?? 5_000;
  const maxEntries = o.maxEntries ?? 100_000;
  const now = o.now ?? Date.now;
  const entries = new Map<string, Entry>();
  const byUser = new Map<string, Set<string>>();
  // Bumped by every notification and every change of liveness: a read that started under an older
  // generation may predate the change and is not remembered.
  let generation = 0;
  let closing = false;

  const forget = (hash: string): void => {
    const e = entries.get(hash);
    if (!e) return;
    entries.delete(hash);
    const set = byUser.get(e.value.username);
    set?.delete(hash);
    if (set?.size === 0) byUser.delete(e.value.username);
  };
  const forgetAll = (): void => {
    entries.clear();
    byUser.clear();
  };

  const subscription: ChannelSubscription | undefined = db.listen?.(CREDENTIALS_CHANNEL, {
    message(username) {
      generation++;
      if (username === '') return forgetAll();
      for (const hash of byUser.get(username) ?? []) entries.delete(hash);
      byUser.delete(username);
    },
    state(live) {
      generation++;
      forgetAll();
      if (closing) return;
      o.logger.info(live ? 'token lookups are cached (credential notifications live)' : 'token lookups go to the database (credential notifications not live)');
    },
  });
  if (!subscription) o.logger.info('token lookups are not cached: this database delivers no notifications');

  const remember = (hash: string, value: TokenLookup, at: number): void => {
    const until = Math.min(at + maxAgeMs, value.expiresAt ? value.expiresAt.getTime() - marginMs : Infinity);
    if (until <= at) return;
    if (entries.size >= maxEntries) {
      const oldest = entries.keys().next().value;
      if (oldest !== undefined) forget(oldest);
    }
    entries.set(hash, { value, until });
    let set = byUser.get(value.username);
    if (!set) byUser.set(value.username, (set = new Set()));
    set.add(hash);
  };

  return {
    get caching() {
      return subscription?.live === true;
    },
    async lookup(token) {
      if (!token.startsWith(TOKEN_PREFIX) || !subscription?.live) return lookupToken(db, token);
      const hash = hashToken(token);
      const hit = entries.get(hash);
      const t = now();
      if (hit) {
        if (hit.until > t) return hit.value;
        forget(hash);
      }
      const before = generation;
      const found = await lookupTokenHash(db, hash);
      if (found?.status === 'valid' && generation === before && subscription.live) remember(hash, found, t);
      return found;
    },
    async close() {
      closing = true;
      await subscription?.close();
      forgetAll();
    },
  };
}
