/**
 * The BullMQ job queue against the shared contract on real Redis (SPAWNGATE_TEST_REDIS_URL, default
 * redis://127.0.0.1:6379), plus what only a shared, networked queue does: several processes, a worker
 * dying mid-job, a Redis outage. Every test uses its own key prefix, removed afterwards through the
 * public API (`destroy`), and checks that nothing is left behind.
 */
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import {
  createBullmqQueue,
  openJobQueue,
  QueueUnavailableError,
  type BullmqJobQueue,
  type BullmqQueueOptions,
} from '../../src/jobs';
import { testJobQueue } from './contract';
import { gate, timed } from './helpers';
import { testLogger } from '../support/logger';
import { freePort } from '../support/ports';
import { startRedisServer, stopChild } from '../support/redis-server';
import { eventually, sleep } from '../support/wait';

const REDIS_URL = process.env.SPAWNGATE_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** Prefixes used by the current test, with the URL of the Redis they live in. */
let used: { url: string; prefix: string }[] = [];
/** Instances the current test created (closed after it, before its keys are removed). */
let instances: BullmqJobQueue[] = [];

function family(overrides: Partial<BullmqQueueOptions> = {}) {
  const prefix = `sgtest-${randomBytes(4).toString('hex')}`;
  const url = overrides.redisUrl ?? REDIS_URL;
  used.push({ url, prefix });
  /** A new instance of this queue family: think "another process". */
  return (extra: Partial<BullmqQueueOptions> = {}) => {
    const q = createBullmqQueue({
      redisUrl: url,
      prefix,
      logger: testLogger,
      pollIntervalMs: 250,
      ...overrides,
      ...extra,
    });
    instances.push(q);
    return q;
  };
}

afterEach(async () => {
  await Promise.all(instances.map((q) => q.close(0)));
  instances = [];
  for (const { url, prefix } of used.splice(0)) {
    if (url !== REDIS_URL) continue; // throwaway servers are gone already
    const admin = createBullmqQueue({ redisUrl: url, prefix, logger: testLogger });
    await admin.destroy();
    await admin.close(0);
    const raw = new Redis(url);
    try {
      expect(await raw.keys(`${prefix}:*`)).toEqual([]);
    } finally {
      raw.disconnect();
    }
  }
  used = [];
});

testJobQueue({
  name: 'bullmq',
  create: async () => family()(),
});

describe('BullMQ job queue', () => {
  test('openJobQueue with a Redis URL picks it', async () => {
    family();
    const q = openJobQueue({
      redisUrl: REDIS_URL,
      prefix: used[0]!.prefix,
      logger: testLogger,
    }) as BullmqJobQueue;
    instances.push(q);
    expect(q.kind).toBe('bullmq');
    await expect(q.ping()).resolves.toBeUndefined();
  });

  test('a job added by one instance is processed by a worker in another', async () => {
    const make = family();
    const api = make(); // never processes: an API-only replica
    const worker = make();
    const ran: string[] = [];
    worker.process<{ user: string }, string>('launch', async (job) => {
      ran.push(job.data.user);
      return `started for ${job.data.user}`;
    });
    expect(await api.add('launch', { user: 'alice' }, { jobId: 'launch-alice' })).toEqual({ added: true });
    const expected = { id: 'launch-alice', state: 'completed', result: 'started for alice' };
    expect(await api.waitFor('launch-alice', 10_000)).toEqual(expected);
    // A third process that never saw this job name learns the result too.
    expect(await make().waitFor('launch-alice', 5_000)).toEqual(expected);
    expect(ran).toEqual(['alice']);
  });

  test('a worker that dies mid-job: another worker runs the job again (stalled-job recovery)', async () => {
    const make = family({ lockDurationMs: 1_000, stalledIntervalMs: 300 });
    const first = make();
    const hold = gate();
    let firstStarted = false;
    first.process('launch', async () => {
      firstStarted = true;
      await hold.wait;
      return 'first';
    });
    await first.add('launch', {}, { jobId: 'launch-1', attempts: 1 });
    expect(await eventually(() => firstStarted)).toBe(true);

    const second = make();
    const secondRuns: number[] = [];
    second.process('launch', async (job) => {
      secondRuns.push(job.attempt);
      return 'second';
    });
    await sleep(300);
    expect(secondRuns).toEqual([]); // locked by the first worker
    await first.close(0); // no grace: like a crash, the job is left active with its lock
    const observer = make();
    expect(await observer.waitFor('launch-1', 15_000)).toEqual({
      id: 'launch-1',
      state: 'completed',
      result: 'second',
    });
    expect(secondRuns).toHaveLength(1);
    hold.open();
    await sleep(200);
    expect(await observer.waitFor('launch-1', 1_000)).toMatchObject({ result: 'second' }); // the dead one wrote nothing
  });

  test('replicas calling repeat share one schedule', async () => {
    const make = family();
    const a = make();
    const b = make();
    const runs: string[] = [];
    a.process('reconcile', async () => void runs.push('a'));
    b.process('reconcile', async () => void runs.push('b'));
    const start = Date.now();
    await Promise.all([a.repeat('reconcile', 250), b.repeat('reconcile', 250)]);
    // Waits for runs rather than a fixed 1.3 s: on a loaded machine the first run comes late. The bound
    // is what one schedule allows in the time taken; two schedules would run about twice as often.
    expect(await eventually(() => runs.length >= 3, 15_000)).toBe(true);
    await sleep(1_500);
    const periods = (Date.now() - start) / 250;
    expect(runs.length).toBeLessThanOrEqual(Math.ceil(periods) + 2);
  });

  test('Redis outage: calls fail fast with QueueUnavailableError, and work again when Redis is back', async () => {
    const port = await freePort();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    let server = await startRedis(port);
    try {
      const make = family({ redisUrl: `redis://127.0.0.1:${port}`, reconnectMaxDelayMs: 500 });
      const q = make();
      q.process<number, number>('double', async (job) => job.data * 2);
      await q.add('double', 1, { jobId: 'before' });
      expect(await q.waitFor('before', 10_000)).toMatchObject({ state: 'completed', result: 2 });

      await stopRedis(server);
      for (const call of <Array<() => Promise<unknown>>>[
        () => q.counts(),
        () => q.add('double', 2, { jobId: 'during' }),
        () => q.ping(),
        () => q.waitFor('before', 10_000),
        () => q.repeat('tick', 1_000),
      ]) {
        const outcome = await timed(call);
        expect(outcome.error).toBeInstanceOf(QueueUnavailableError);
        expect(outcome.ms).toBeLessThan(3_000);
      }

      await sleep(2_500); // workers and listeners go through a few reconnect attempts
      server = await startRedis(port);
      expect(
        await eventually(
          () =>
            q.ping().then(
              () => true,
              () => false,
            ),
          15_000,
          200,
        ),
      ).toBe(true);
      expect(await q.add('double', 3, { jobId: 'after' })).toEqual({ added: true });
      expect(await q.waitFor('after', 20_000)).toMatchObject({ state: 'completed', result: 6 });
      // Also the job name first used during the outage works now.
      await q.repeat('tick', 60_000);
      expect(await q.counts()).toMatchObject({ active: 0 });
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await Promise.all(instances.splice(0).map((q) => q.close(0)));
      await stopRedis(server);
    }
  }, 60_000);

  test('Redis hangs: calls time out with QueueUnavailableError, and work again when it answers', async () => {
    const port = await freePort();
    const server = await startRedis(port);
    try {
      const make = family({ redisUrl: `redis://127.0.0.1:${port}`, requestTimeoutMs: 1_000 });
      const q = make();
      q.process<number, number>('double', async (job) => job.data * 2);
      await q.add('double', 1, { jobId: 'before' });
      expect(await q.waitFor('before', 10_000)).toMatchObject({ result: 2 });

      server.kill('SIGSTOP'); // connections stay open, nothing answers
      for (const call of <Array<() => Promise<unknown>>>[
        () => q.counts(),
        () => q.add('double', 2, { jobId: 'during' }),
        () => q.ping(),
      ]) {
        const outcome = await timed(call);
        expect(outcome.error).toBeInstanceOf(QueueUnavailableError);
        expect(outcome.ms).toBeLessThan(3_000);
      }
      server.kill('SIGCONT');
      expect(
        await eventually(
          () =>
            q.ping().then(
              () => true,
              () => false,
            ),
          15_000,
          200,
        ),
      ).toBe(true);
      await q.add('double', 3, { jobId: 'after' });
      expect(await q.waitFor('after', 20_000)).toMatchObject({ state: 'completed', result: 6 });
    } finally {
      server.kill('SIGCONT');
      await Promise.all(instances.splice(0).map((q) => q.close(0)));
      await stopRedis(server);
    }
  }, 60_000);
});

/** A throwaway redis-server on `port` (tests/support), as the process these tests pause and kill. */
const startRedis = async (port: number): Promise<ChildProcess> => (await startRedisServer(port)).child;
const stopRedis = stopChild;
