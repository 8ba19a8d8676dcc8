/** The in-process job queue against the shared contract, plus what only it does. */
import { createInProcessQueue, openJobQueue } from '../../src/jobs';
import { testJobQueue } from './contract';
import { testLogger } from '../support/logger';

testJobQueue({
  name: 'inprocess',
  create: async () => createInProcessQueue({ logger: testLogger }),
});

describe('in-process job queue', () => {
  test('openJobQueue without a Redis URL picks it', async () => {
    const q = openJobQueue({ prefix: 'spawngate', logger: testLogger });
    expect(q.kind).toBe('inprocess');
    await q.close();
  });

  test('payloads and results are JSON, as with BullMQ', async () => {
    const q = createInProcessQueue({ logger: testLogger });
    const when = new Date(0);
    let seen: unknown;
    q.process('json', async (job) => {
      seen = job.data;
      return { when, nothing: undefined };
    });
    await q.add('json', { when }, { jobId: 'json-1' });
    expect(await q.waitFor('json-1', 5_000)).toEqual({
      id: 'json-1',
      state: 'completed',
      result: { when: '1970-01-01T00:00:00.000Z' },
    });
    expect(seen).toEqual({ when: '1970-01-01T00:00:00.000Z' });
    await q.close();
  });

  test('invalid names and options are refused', async () => {
    const q = createInProcessQueue({ logger: testLogger });
    await expect(q.add('has:colon', {}, { jobId: 'a' })).rejects.toThrow(/invalid job name/);
    await expect(q.add('ok', {}, { jobId: '' })).rejects.toThrow(/jobId/);
    await expect(q.add('ok', {}, { jobId: 'a', attempts: 0 })).rejects.toThrow(/attempts/);
    q.process('ok', async () => undefined);
    expect(() => q.process('ok', async () => undefined)).toThrow(/already registered/);
    await q.close();
  });
});
