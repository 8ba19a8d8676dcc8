/**
 * Reading the claims spawngate cares about out of a verified token payload (JWT or introspection):
 * the user name (validated like a hub user name), groups, and whether the caller is an admin.
 */
import { NameError, validateUsername } from '../profiles';

export class ClaimError extends Error {
  override readonly name = 'ClaimError';
}

/** `realm_access.roles` walks nested objects; a plain name that itself contains dots is tried first. */
export function claimAt(payload: Record<string, unknown>, path: string): unknown {
  if (Object.hasOwn(payload, path)) return payload[path];
  let cur: unknown = payload;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    if (!Object.hasOwn(cur, part)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/** A claim as a list of strings: arrays keep their strings, a string is split on spaces (OAuth `scope` style). */
export function claimValues(payload: Record<string, unknown>, path: string): string[] {
  const v = claimAt(payload, path);
  if (typeof v === 'string') return v.split(/\s+/).filter(Boolean);
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  return [];
}

export function usernameFrom(payload: Record<string, unknown>, claim: string): string {
  const v = claimAt(payload, claim);
  if (typeof v !== 'string' || v.length === 0) throw new ClaimError(`the token has no '${claim}' claim naming the user`);
  try {
    return validateUsername(v);
  } catch (err) {
    if (err instanceof NameError) throw new ClaimError(`the token's '${claim}' claim is not a valid user name`);
    throw err;
  }
}

export function isAdmin(payload: Record<string, unknown>, claim: string, values: readonly string[]): boolean {
  if (values.length === 0) return false;
  const have = new Set(claimValues(payload, claim));
  return values.some((v) => have.has(v));
}
