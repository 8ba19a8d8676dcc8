/**
 * The shared contract suite every `JobQueue` implementation runs (in-process and BullMQ), like the
 * backends' `testBackend`: `testJobQueue({ name, create, skip })`. An implementation that cannot pass
 * a test lists it in `skip` with the reason; nothing is skipped silently.
 *
 * `create` returns a fresh, empty queue (for BullMQ: its own key prefix). The suite closes every queue
 * it created after each test; removing what is left in Redis is the caller's job (through the public
 * API), in its own `afterEach`.
 */
import { QueueUnavailableError, UnrecoverableJobError, type JobInfo, type JobQueue } from '../../src/jobs';
import { gate, timed, type Gate } from './helpers';
import { eventually, sleep } from '../support/wait';

export interface JobQueueContractOptions {
  name: string;
  create: () => Promise<JobQueue>;
  skip?: { reason: string; tests: ContractTest[] }[];
}

export const CONTRACT_TESTS = [
  'handler receives id, name, data, attempt and addedAt',
  'concurrent adds with the same id run the handler once',
  'a pending id is not added again; the same id runs again after completion',
  'jobs added before a handler is registered wait for it',
  'retries with exponential backoff, then succeeds',
  'fails after the last attempt with the last error',
  'UnrecoverableJobError fails at once',
  'a delayed job does not run before its delay',
  'waitFor returns results of finished jobs and undefined on timeout',
  'concurrency limit is respected, per name',
  'repeat runs periodically, once per schedule, and stops on close',
  'counts reports waiting, delayed and active jobs',
  'close waits for an active job',
  'close gives up on an active job after graceMs',
  'a closed queue refuses work with QueueUnavailableError',
] as const;
export type ContractTest = (typeof CONTRACT_TESTS)[number];

export function testJobQueue(opts: JobQueueContractOptions): void {
  const skipped = new Map<string, string>();
  for (const s of opts.skip ?? []) for (const t of s.tests) skipped.set(t, s.reason);

  describe(`job queue contract: ${opts.name}`, () => {
    let queues: JobQueue[] = [];
    let gates: Gate[] = [];

    const newQueue = async () => {
      const q = await opts.create();
      queues.push(q);
      return q;
    };
    const newGate = () => {
      const g = gate();
      gates.push(g);
      return g;
    };

    afterEach(async () => {
      await Promise.all(queues.map((q) => q.close(0)));
      for (const g of gates) g.open();
      queues = [];
      gates = [];
    });

    const contract = (title: ContractTest, fn: () => Promise<void>, timeoutMs = 30_000) => {
      const reason = skipped.get(title);
      if (reason) test.skip(`${title} — skipped: ${reason}`, fn);
      else test(title, fn, timeoutMs);
    };

    contract('handler receives id, name, data, attempt and addedAt', async () => {
      const q = await newQueue();
      const seen: JobInfo[] = [];
      q.process('info', async (job) => {
        seen.push(job);
        return 'ok';
      });
      const before = Date.now();
      await q.add('info', { user: 'alice', n: [1, 2] }, { jobId: 'info-1' });
      expect(await q.waitFor('info-1', 10_000)).toEqual({ id: 'info-1', state: 'completed', result: 'ok' });
      expect(seen).toHaveLength(1);
      expect(seen[0]).toMatchObject({
        id: 'info-1',
        name: 'info',
        data: { user: 'alice', n: [1, 2] },
        attempt: 1,
      });
      expect(seen[0]!.addedAt).toBeGreaterThanOrEqual(before - 1_000);
      expect(seen[0]!.addedAt).toBeLessThanOrEqual(Date.now());
    });

    contract('concurrent adds with the same id run the handler once', async () => {
      const q = await newQueue();
      let runs = 0;
      q.process('dedup', async () => {
        runs++;
        await sleep(200);
        return runs;
      });
      const results = await Promise.all(
        Array.from({ length: 6 }, (_, i) => q.add('dedup', { i }, { jobId: 'same-id' })),
      );
      expect(results.filter((r) => r.added)).toHaveLength(1);
      expect(await q.waitFor('same-id', 10_000)).toMatchObject({ state: 'completed', result: 1 });
      await sleep(300);
      expect(runs).toBe(1);
    });

    contract('a pending id is not added again; the same id runs again after completion', async () => {
      const q = await newQueue();
      const hold = newGate();
      const runs: number[] = [];
      q.process<{ n: number }, number>('again', async (job) => {
        runs.push(job.data.n);
        if (job.data.n === 1) await hold.wait;
        return job.data.n * 10;
      });
      expect(await q.add('again', { n: 1 }, { jobId: 'again-1' })).toEqual({ added: true });
      expect(await eventually(() => runs.length === 1)).toBe(true);
      // Active: a second add is a no-op.
      expect(await q.add('again', { n: 99 }, { jobId: 'again-1' })).toEqual({ added: false });
      hold.open();
      expect(await q.waitFor('again-1', 10_000)).toMatchObject({ state: 'completed', result: 10 });
      // Finished: the same id is a new job.
      expect(await q.add('again', { n: 2 }, { jobId: 'again-1' })).toEqual({ added: true });
      expect(await q.waitFor('again-1', 10_000)).toMatchObject({ state: 'completed', result: 20 });
      expect(runs).toEqual([1, 2]);
    });

    contract('jobs added before a handler is registered wait for it', async () => {
      const q = await newQueue();
      await q.add('later', { v: 'a' }, { jobId: 'later-a' });
      await q.add('later', { v: 'b' }, { jobId: 'later-b' });
      await sleep(200);
      expect(await q.counts()).toMatchObject({ waiting: 2, active: 0 });
      const seen: string[] = [];
      q.process<{ v: string }, string>('later', async (job) => {
        seen.push(job.data.v);
        return job.data.v.toUpperCase();
      });
      expect(await q.waitFor('later-a', 10_000)).toMatchObject({ state: 'completed', result: 'A' });
      expect(await q.waitFor('later-b', 10_000)).toMatchObject({ state: 'completed', result: 'B' });
      expect(seen.sort()).toEqual(['a', 'b']);
    });

    contract('retries with exponential backoff, then succeeds', async () => {
      const q = await newQueue();
      const attempts: { attempt: number; at: number }[] = [];
      q.process('flaky', async (job) => {
        attempts.push({ attempt: job.attempt, at: Date.now() });
        if (job.attempt < 3) throw new Error(`transient ${job.attempt}`);
        return 'done';
      });
      await q.add('flaky', {}, { jobId: 'flaky-1', attempts: 4, backoffMs: 150 });
      expect(await q.waitFor('flaky-1', 15_000)).toEqual({
        id: 'flaky-1',
        state: 'completed',
        result: 'done',
      });
      expect(attempts.map((a) => a.attempt)).toEqual([1, 2, 3]);
      // 150 ms before the second attempt, 300 ms before the third (timers may fire a little early).
      expect(attempts[1]!.at - attempts[0]!.at).toBeGreaterThanOrEqual(130);
      expect(attempts[2]!.at - attempts[1]!.at).toBeGreaterThanOrEqual(270);
    });

    contract('fails after the last attempt with the last error', async () => {
      const q = await newQueue();
      let calls = 0;
      q.process('doomed', async (job) => {
        calls++;
        throw new Error(`attempt ${job.attempt} failed`);
      });
      await q.add('doomed', {}, { jobId: 'doomed-1', attempts: 2, backoffMs: 50 });
      expect(await q.waitFor('doomed-1', 15_000)).toEqual({
        id: 'doomed-1',
        state: 'failed',
        error: 'attempt 2 failed',
      });
      await sleep(300);
      expect(calls).toBe(2);
    });

    contract('UnrecoverableJobError fails at once', async () => {
      const q = await newQueue();
      let calls = 0;
      q.process('bad-input', async () => {
        calls++;
        throw new UnrecoverableJobError('environment "tf" belongs to no experiment');
      });
      await q.add('bad-input', {}, { jobId: 'bad-1', attempts: 5, backoffMs: 10 });
      expect(await q.waitFor('bad-1', 10_000)).toEqual({
        id: 'bad-1',
        state: 'failed',
        error: 'environment "tf" belongs to no experiment',
      });
      await sleep(300);
      expect(calls).toBe(1);
      expect(await q.counts()).toEqual({ waiting: 0, active: 0, delayed: 0 });
    });

    contract('a delayed job does not run before its delay', async () => {
      const q = await newQueue();
      let startedAt = 0;
      q.process('delayed', async () => {
        startedAt = Date.now();
      });
      const addedAt = Date.now();
      await q.add('delayed', {}, { jobId: 'delayed-1', delayMs: 500 });
      expect((await q.counts()).delayed).toBe(1);
      expect(await q.waitFor('delayed-1', 10_000)).toEqual({
        id: 'delayed-1',
        state: 'completed',
        result: null,
      });
      expect(startedAt - addedAt).toBeGreaterThanOrEqual(450);
    });

    contract('waitFor returns results of finished jobs and undefined on timeout', async () => {
      const q = await newQueue();
      const unknown = await timed(() => q.waitFor('never-added', 300));
      expect(unknown.value).toBeUndefined();
      expect(unknown.ms).toBeGreaterThanOrEqual(250);
      expect(unknown.ms).toBeLessThan(3_000);

      const hold = newGate();
      q.process('slow', async () => {
        await hold.wait;
        return { url: 'http://127.0.0.1:1234/' };
      });
      await q.add('slow', {}, { jobId: 'slow-1' });
      const early = await timed(() => q.waitFor('slow-1', 300));
      expect(early.value).toBeUndefined();
      expect(early.ms).toBeLessThan(3_000);

      const waiting = q.waitFor('slow-1', 10_000);
      hold.open();
      const expected = { id: 'slow-1', state: 'completed', result: { url: 'http://127.0.0.1:1234/' } };
      expect(await waiting).toEqual(expected);
      // A finished job's result stays available for a while.
      const again = await timed(() => q.waitFor('slow-1', 5_000));
      expect(again.value).toEqual(expected);
      expect(again.ms).toBeLessThan(1_000);
    });

    contract('concurrency limit is respected, per name', async () => {
      const q = await newQueue();
      let active = 0;
      let maxActive = 0;
      q.process(
        'limited',
        async () => {
          active++;
          maxActive = Math.max(maxActive, active);
          await sleep(150);
          active--;
        },
        { concurrency: 2 },
      );
      let otherRanWhileBusy = false;
      q.process('other', async () => {
        otherRanWhileBusy = active > 0;
      });
      const ids = Array.from({ length: 6 }, (_, i) => `limited-${i}`);
      for (const jobId of ids) await q.add('limited', {}, { jobId });
      await q.add('other', {}, { jobId: 'other-1' });
      for (const id of ids) expect((await q.waitFor(id, 15_000))?.state).toBe('completed');
      expect((await q.waitFor('other-1', 5_000))?.state).toBe('completed');
      expect(maxActive).toBe(2);
      expect(otherRanWhileBusy).toBe(true);
    });

    contract('repeat runs periodically, once per schedule, and stops on close', async () => {
      const q = await newQueue();
      const runs: number[] = [];
      q.process('tick', async () => {
        runs.push(Date.now());
      });
      const start = Date.now();
      await q.repeat('tick', 250);
      await q.repeat('tick', 250); // idempotent: still one schedule
      expect(await eventually(() => runs.length >= 3, 10_000)).toBe(true);
      await sleep(Math.max(0, 1_300 - (Date.now() - start)));
      // About one run per 250 ms (≈ 6 in 1.3 s); two schedules would give twice as many.
      expect(runs.length).toBeLessThanOrEqual(8);
      await q.close(1_000);
      const after = runs.length;
      await sleep(700);
      expect(runs.length).toBe(after);
    });

    contract('counts reports waiting, delayed and active jobs', async () => {
      const q = await newQueue();
      expect(await q.counts()).toEqual({ waiting: 0, active: 0, delayed: 0 });
      await q.add('idle', {}, { jobId: 'idle-1' });
      await q.add('idle', {}, { jobId: 'idle-2' });
      await q.add('idle', {}, { jobId: 'idle-3', delayMs: 60_000 });
      const hold = newGate();
      let started = false;
      q.process('busy', async () => {
        started = true;
        await hold.wait;
      });
      await q.add('busy', {}, { jobId: 'busy-1' });
      expect(await eventually(() => started)).toBe(true);
      expect(await q.counts()).toEqual({ waiting: 2, active: 1, delayed: 1 });
      hold.open();
      await q.waitFor('busy-1', 10_000);
      expect(await q.counts()).toEqual({ waiting: 2, active: 0, delayed: 1 });
      await expect(q.ping()).resolves.toBeUndefined();
    });

    contract('close waits for an active job', async () => {
      const q = await newQueue();
      let started = false;
      let finished = false;
      q.process('slow', async () => {
        started = true;
        await sleep(500);
        finished = true;
      });
      await q.add('slow', {}, { jobId: 'slow-close' });
      expect(await eventually(() => started)).toBe(true);
      const closing = await timed(() => q.close(10_000));
      expect(closing.error).toBeUndefined();
      expect(finished).toBe(true);
      expect(closing.ms).toBeGreaterThanOrEqual(300);
    });

    contract('close gives up on an active job after graceMs', async () => {
      const q = await newQueue();
      const hold = newGate();
      let started = false;
      q.process('stuck', async () => {
        started = true;
        await hold.wait;
      });
      await q.add('stuck', {}, { jobId: 'stuck-1' });
      expect(await eventually(() => started)).toBe(true);
      const closing = await timed(() => q.close(300));
      expect(closing.error).toBeUndefined();
      expect(closing.ms).toBeGreaterThanOrEqual(250);
      expect(closing.ms).toBeLessThan(5_000);
    });

    contract('a closed queue refuses work with QueueUnavailableError', async () => {
      const q = await newQueue();
      await q.close();
      await q.close(); // idempotent
      await expect(q.add('x', {}, { jobId: 'x-1' })).rejects.toBeInstanceOf(QueueUnavailableError);
      await expect(q.counts()).rejects.toBeInstanceOf(QueueUnavailableError);
      await expect(q.ping()).rejects.toBeInstanceOf(QueueUnavailableError);
      await expect(q.waitFor('x-1', 100)).rejects.toBeInstanceOf(QueueUnavailableError);
    });
  });
}
