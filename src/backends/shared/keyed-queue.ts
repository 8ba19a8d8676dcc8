/**
 * Runs async functions one at a time per key (a workload name), in call order; different keys run
 * concurrently. A function that fails does not stop the ones queued after it.
 */
export class KeyedQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const tail = run.catch(() => undefined);
    this.tails.set(key, tail);
    return run.finally(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
  }
}
