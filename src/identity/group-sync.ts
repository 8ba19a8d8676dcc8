/**
 * IdP groups → experiment memberships. On each authenticated call the caller's 'oidc' memberships are
 * made to match their groups (added and removed); memberships an administrator created ('sql') are
 * never touched. The last group set seen per user is cached, so an unchanged set costs no database
 * work until the cache entry expires (then one read-mostly pass checks for drift).
 */
import { withAuditActor } from '../admin/audit-context';
import type { Db } from '../db';
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
        await q.query('INSERT INTO users (username) VALUES ($1) ON CONFLICT (username) DO NOTHING', [username]);
        const added = await q.query<{ name: string }>(
          `INSERT INTO experiment_members (experiment_id, user_id, source)
           SELECT e.id, u.id, 'oidc' FROM experiments e JOIN users u ON u.username = $1
            WHERE e.name = ANY($2::text[])
           ON CONFLICT (experiment_id, user_id) DO NOTHING
           RETURNING (SELECT name FROM experiments WHERE id = experiment_id) AS name`,
          [username, desired],
        );
        const removed = await q.query<{ name: string }>(
          `DELETE FROM experiment_members m USING experiments e, users u
            WHERE m.experiment_id = e.id AND m.user_id = u.id AND u.username = $1
              AND m.source = 'oidc' AND NOT (e.name = ANY($2::text[]))
           RETURNING e.name`,
          [username, desired],
        );
        const known = await q.query<{ name: string }>('SELECT name FROM experiments WHERE name = ANY($1::text[])', [desired]);
        const knownNames = new Set(known.map((r) => r.name));
        return {
          added: added.map((r) => r.name).sort(),
          removed: removed.map((r) => r.name).sort(),
          unknown: desired.filter((d) => !knownNames.has(d)),
        };
      });
      if (seen.size >= maxEntries && !seen.has(username)) seen.delete(seen.keys().next().value as string);
      seen.set(username, { fingerprint, until: now + o.cacheSeconds * 1000 });
      if (result.added.length || result.removed.length) o.logger.info('experiment memberships synchronized from IdP groups', { username, ...result });
      if (result.unknown.length) o.logger.warn('oidc.group_experiments names experiments that do not exist', { experiments: result.unknown });
      return result;
    },
  };
}
