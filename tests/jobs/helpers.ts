/** Small helpers shared by the job-queue tests: a silent logger, gates, polling, timing. */
import winston from 'winston';
import type { Logger } from '../../src/logging';

/** Quiet unless SPAWNGATE_TEST_LOG=1. */
export const testLogger: Logger = winston.createLogger({
  level: 'debug',
  silent: process.env.SPAWNGATE_TEST_LOG !== '1',
  transports: [new winston.transports.Console()],
});

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

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

/** Polls `fn` until it returns true or `timeoutMs` passes; returns the last answer. */
export async function eventually(
  fn: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  everyMs = 25,
): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return true;
    if (Date.now() > end) return false;
    await sleep(everyMs);
  }
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
