/**
 * IdP groups → experiment memberships. On each authenticated call the caller's 'oidc' memberships are
 * made to match their groups (added and removed); memberships an administrator created ('sql') are
 * never touched. The last group set seen per user is cached, so an unchanged set costs no database
 * work until the cache entry expires (then one read-mostly pass checks for drift).
 */
import { ensureUser, syncOidcMemberships, withAuditActor, type Db } from '../db';
import type { Logger } from '../logging';

export interface GroupSyncOptions {
  db: Db;
  logger: Logger;
  /** Group → experiment names. */
  mapping: ReadonlyMap<string, readonly string[]>;
  cacheSeconds: number;
  maxEntries?: number;
}

export interface GroupSyncResult {
  added: string[];
  removed: string[];
  /** Experiments the mapping names that do not exist (nothing to join). */
  unknown: string[];
}

export interface GroupSync {
  /** Synchronizes; `undefined` when the cache says nothing changed. */
  sync(username: string, groups: readonly string[]): Promise<GroupSyncResult | undefined>;
  /** Forget cached group sets (tests, or after an administrator edited memberships). */
  forget(username?: string): void;
}

export function desiredExperiments(mapping: ReadonlyMap<string, readonly string[]>, groups: readonly string[]): string[] {
  const out = new Set<string>();
  for (const g of groups) for (const e of mapping.get(g) ?? []) out.add(e);
  return [...out].sort();
}

export function createGroupSync(o: GroupSyncOptions): GroupSync {
  const seen = new Map<string, { fingerprint: string; until: number }>();
  const maxEntries = o.maxEntries ?? 50_000;
  return {
    forget(username) {
      if (username === undefined) seen.clear();
      else seen.delete(username);
    },
    async sync(username, groups) {
      const desired = desiredExperiments(o.mapping, groups);
      const fingerprint = desired.join('\n');
      const now = Date.now();
      const cached = seen.get(username);
      if (cached && cached.fingerprint === fingerprint && cached.until > now) return undefined;

      const result = await withAuditActor(o.db, { actor: `oidc:${username}`, via: 'group-sync' }, async (q) => {
        await ensureUser(q, username);
        return syncOidcMemberships(q, username, desired);
      });
      if (seen.size >= maxEntries && !seen.has(username)) seen.delete(seen.keys().next().value as string);
      seen.set(username, { fingerprint, until: now + o.cacheSeconds * 1000 });
      if (result.added.length || result.removed.length) o.logger.info('experiment memberships synchronized from IdP groups', { username, ...result });
      if (result.unknown.length) o.logger.warn('oidc.group_experiments names experiments that do not exist', { experiments: result.unknown });
      return result;
    },
  };
}
