/** Small helpers shared by the job-queue tests: gates and timing (waiting and the logger: tests/support). */

/** A promise to hold a handler until the test opens it; `opened` once, harmless to open twice. */
export interface Gate {
  wait: Promise<void>;
  open: () => void;
}
export function gate(): Gate {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { wait, open };
}

/** Runs `fn` and returns how long it took to settle, with its outcome. */
export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value?: T; error?: unknown }> {
  const start = Date.now();
  try {
    const value = await fn();
    return { ms: Date.now() - start, value };
  } catch (error) {
    return { ms: Date.now() - start, error };
  }
}
