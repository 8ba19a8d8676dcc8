/**
 * Reversible, collision-free escaping of names (JupyterHub user and server names: any Unicode but `/`)
 * into the alphabet of DNS labels and Kubernetes label values. The scheme is escapism's idea
 * (KubeSpawner's): a safe alphabet is kept, every other UTF-8 byte becomes the escape character and two
 * hex digits. Here the safe alphabet is `[a-z0-9]` and the escape character `-`, so the result is
 * lower-case, case stays distinguishable (`A` is `-41`) and a `-` in the name is itself escaped (`-2d`).
 *
 * Two forms, told apart by `--`, which an escape never contains (every `-` is followed by two hex
 * digits):
 * - direct: the escape itself, when it fits the length and starts with a letter or digit; `unescapeName`
 *   reverses it;
 * - hashed: `<head>--<10 hex of sha256(name)>`, when the escape is too long or starts with `-`; the head
 *   is the escape's beginning (cut on an escape boundary), kept for people reading `kubectl get pods`.
 * Distinct names give distinct results: direct forms by reversibility, a direct and a hashed form by the
 * `--`, two hashed forms unless sha256 collides in 40 bits. The real name is always kept beside it
 * (an annotation, a label of an engine that accepts any value, the database).
 */
import { createHash } from 'node:crypto';

const SAFE_BYTE = /^[a-z0-9]$/;
const HASH_CHARS = 10;
const MARKER = '--';

/** Every byte of `name` outside `[a-z0-9]` as `-xx` (UTF-8, lower-case hex). Reversible. */
export function escapeName(name: string): string {
  let out = '';
  for (const byte of Buffer.from(name, 'utf8')) {
    const ch = String.fromCharCode(byte);
    out += SAFE_BYTE.test(ch) ? ch : `-${byte.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** The name a direct form came from, or `undefined` for anything `escapeName` cannot have produced. */
export function unescapeName(escaped: string): string | undefined {
  if (!/^(?:[a-z0-9]|-[0-9a-f]{2})*$/.test(escaped)) return undefined;
  const bytes: number[] = [];
  for (let i = 0; i < escaped.length; ) {
    if (escaped[i] === '-') {
      const byte = parseInt(escaped.slice(i + 1, i + 3), 16);
      // A safe byte written escaped would give a second spelling of the same name.
      if (SAFE_BYTE.test(String.fromCharCode(byte))) return undefined;
      bytes.push(byte);
      i += 3;
    } else {
      bytes.push(escaped.charCodeAt(i));
      i += 1;
    }
  }
  const name = Buffer.from(bytes).toString('utf8');
  return escapeName(name) === escaped ? name : undefined; // invalid UTF-8 does not round-trip
}

/**
 * `name` as a DNS-1123 label (also a valid Kubernetes label value) of at most `maxLength` characters
 * (at least 16): the direct form when it fits and starts with a letter or digit, else the hashed form.
 */
export function nameSlug(name: string, maxLength = 63): string {
  if (maxLength < 16) throw new RangeError('nameSlug needs room for at least 16 characters');
  const escaped = escapeName(name);
  if (escaped.length > 0 && escaped.length <= maxLength && /^[a-z0-9]/.test(escaped)) return escaped;
  const hash = createHash('sha256').update(name, 'utf8').digest('hex').slice(0, HASH_CHARS);
  // Drop a leading '-' (a label starts with a letter or digit) and cut where no escape is split.
  let head = escaped.replace(/^-/, '').slice(0, maxLength - HASH_CHARS - MARKER.length);
  head = head.replace(/-[0-9a-f]?$/, '');
  return `${head || 'x'}${MARKER}${hash}`;
}

/** Whether `slug` is in the hashed form (the name then comes only from where it is kept beside it). */
export function isHashedSlug(slug: string): boolean {
  return slug.includes(MARKER);
}
