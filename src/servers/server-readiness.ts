/**
 * Readiness of a single-user server: it answers HTTP at all (any status) on its service prefix, and
 * the start deadline every step of a start is held to.
 */
import http from 'node:http';

export function answersHttp(url: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(true);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(false));
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class StartDeadlineError extends Error {
  override name = 'StartDeadlineError';
}

/** `work`, or a StartDeadlineError with `why()` once `deadline` (ms since epoch) has passed. */
export async function beforeDeadline<T>(work: Promise<T>, deadline: number, why: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new StartDeadlineError(why())), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}
