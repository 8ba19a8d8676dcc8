/**
 * Per-user token lookups that share statements but never answer from memory.
 *
 * Every request with an `sg_` token needs its row and its owner's `users.active` as the database holds
 * them when the request arrives: an administrator's `UPDATE users SET active = false` or a revocation
 * must refuse the very next request, on every replica. A cache cannot promise that (a change made by
 * admin SQL reaches a replica only by notification, after the administrator's COMMIT has returned), so
 * nothing is cached. What is saved is the statement per request: while one lookup statement is running,
 * the lookups that arrive join the next one, which starts only when the running one ends; with no
 * statement running, the lookups of one turn of the event loop share one. A lookup therefore always
 * reads through a statement that started after it arrived, and sees every change committed before it.
 * Under load one statement answers many requests (its cost in spawngate's CPU and Postgres's is paid once);
 * when idle a lookup waits for nothing but the end of its event loop turn.
 *
 * DataLoader does the batching; its memoization is off.
 */
import DataLoader from 'dataloader';
import { hashToken, lookupTokenHashes, TOKEN_PREFIX, type TokenLookup } from './tokens';
import type { Queryable } from './types';

export interface TokenLookupBatchOptions {
  /** Most tokens one statement looks up (default 128); lookups beyond it wait in a batch of their own. */
  maxBatchSize?: number;
}

/** `lookupToken` (tokens.ts) with statements shared between concurrent calls, as above. */
export function createBatchedTokenLookup(q: Queryable, opts: TokenLookupBatchOptions = {}): (token: string) => Promise<TokenLookup | undefined> {
  const running = new Set<Promise<unknown>>();
  const loader = new DataLoader<string, TokenLookup | undefined>(
    (hashes) => {
      const statement = lookupTokenHashes(q, hashes).then((found) => hashes.map((h) => found.get(h)));
      running.add(statement);
      const done = (): void => void running.delete(statement);
      statement.then(done, done);
      return statement;
    },
    {
      cache: false,
      maxBatchSize: opts.maxBatchSize ?? 128,
      // A batch starts when no statement is running: until then it keeps taking lookups.
      batchScheduleFn: (dispatch) => {
        if (running.size === 0) setImmediate(dispatch);
        else void Promise.allSettled([...running]).then(() => dispatch());
      },
    },
  );
  return async (token) => (token.startsWith(TOKEN_PREFIX) ? loader.load(hashToken(token)) : undefined);
}
