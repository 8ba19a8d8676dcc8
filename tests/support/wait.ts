/**
 * Waiting in tests, in one place: a fixed pause, and polling until something holds. Three shapes
 * because the tests ask three questions — "give me the value once it exists, or fail saying what I
 * waited for" (`waitFor`), "did it become true in time?" (`eventually`), and "the last value, for the
 * assertions to explain" (`pollUntil`) — over one polling loop.
 */

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Calls `fn` every `everyMs` until it returns a truthy value, or until `timeoutMs` has passed (resolves
 * `undefined`, with the last error `fn` threw). An error `fatal` accepts is rethrown at once.
 */
async function poll<T>(
  fn: () => Promise<T | undefined | false | null> | T | undefined | false | null,
  timeoutMs: number,
  everyMs: number,
  fatal: (err: unknown) => boolean = () => false,
): Promise<{ value?: T; lastErr?: unknown }> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return { value: v };
    } catch (err) {
      if (fatal(err)) throw err;
      lastErr = err;
    }
    if (Date.now() >= deadline) return { lastErr };
    await sleep(everyMs);
  }
}

/** The first truthy value of `fn`; throws `timed out waiting for <what>` (with `fn`'s last error). */
export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false>,
  timeoutMs = 20_000,
  everyMs = 100,
  fatal: (err: unknown) => boolean = () => false,
): Promise<T> {
  const { value, lastErr } = await poll(fn, timeoutMs, everyMs, fatal);
  if (value !== undefined) return value;
  throw new Error(`timed out waiting for ${what}${lastErr ? `: ${(lastErr as Error).message}` : ''}`);
}

/** True once `fn` returns true, false if it has not by `timeoutMs`; an error `fn` throws is thrown. */
export async function eventually(fn: () => boolean | Promise<boolean>, timeoutMs = 10_000, everyMs = 25): Promise<boolean> {
  const { value } = await poll(async () => (await fn()) || undefined, timeoutMs, everyMs, () => true);
  return value === true;
}

/**
 * Calls `fn` until `ok(value)` or `timeoutMs`; returns the last value (the assertions then say what was
 * wrong). An error `fn` throws is thrown.
 */
export async function pollUntil<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 15_000, everyMs = 100): Promise<T> {
  let last!: T;
  await poll(
    async () => {
      last = await fn();
      return ok(last);
    },
    timeoutMs,
    everyMs,
    () => true,
  );
  return last;
}
