/**
 * Reading `?user=` as jupyter_server sends it: it appends `KERNEL_USERNAME` to the URL without
 * percent-encoding (DESIGN §2). What reaches the routes is the target as the raw-target listener left
 * it (raw UTF-8 bytes and spaces percent-encoded, everything else as the client sent it), so:
 * - `+` stays `+` (it is not form encoding: a user `a+b` arrives as `a+b`; a space arrives raw and is
 *   encoded `%20` on the way in);
 * - `%XX` sequences are decoded where they form UTF-8, and a `%` that starts no such sequence stays
 *   itself (`50%off` is a name, not an error) — as Python's `unquote`, which Enterprise Gateway's
 *   server applies, does.
 * Known limits, all the client's: a name containing `%` followed by two hex digits arrives decoded
 * (`a%41` reads as `aA`), a `&` ends the value, and a `#` never leaves the client.
 */

/** First value of `key` in the raw query string of `url`; an empty value counts as absent (as EG treats `?user=`). */
export function rawQueryParam(url: string, key: string): string | undefined {
  const q = url.indexOf('?');
  if (q < 0) return undefined;
  const hash = url.indexOf('#', q);
  const query = url.slice(q + 1, hash < 0 ? undefined : hash);
  for (const part of query.split('&')) {
    const eq = part.indexOf('=');
    if (lenientDecode(eq < 0 ? part : part.slice(0, eq)) !== key) continue;
    const value = lenientDecode(eq < 0 ? '' : part.slice(eq + 1));
    return value === '' ? undefined : value;
  }
  return undefined;
}

/** Percent-decodes the runs of `%XX` that are valid UTF-8 and leaves everything else as it is. */
export function lenientDecode(s: string): string {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    return s.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => decodeRun(run));
  }
}

/** A run of escapes: decoded when it is valid UTF-8, else byte sequence by byte sequence, keeping the invalid ones. */
function decodeRun(run: string): string {
  try {
    return decodeURIComponent(run);
  } catch {
    // Split into the longest valid prefixes; an escape that starts no valid sequence stays literal.
    let out = '';
    let i = 0;
    while (i < run.length) {
      let done = false;
      for (let len = Math.min(4, (run.length - i) / 3); len >= 1; len--) {
        try {
          out += decodeURIComponent(run.slice(i, i + len * 3));
          i += len * 3;
          done = true;
          break;
        } catch {
          // shorter
        }
      }
      if (!done) {
        out += run.slice(i, i + 3);
        i += 3;
      }
    }
    return out;
  }
}
