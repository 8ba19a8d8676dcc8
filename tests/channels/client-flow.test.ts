/**
 * The kernel → client budget's rules (src/kernels/channels/client-flow.ts), step by step with fake
 * timers and websockets whose `bufferedAmount` the test sets: pause past the budget, resume at half,
 * a sole consumer is only waited for, one of several is closed after the grace period unless it
 * catches up, and a consumer joining a paused kernel starts that grace period.
 * (tests/tenancy/slow-client.test.ts runs the same rules on real websockets and a real kernel.)
 */
import type { WebSocket } from 'ws';
import { ClientFlow, SLOW_CLIENT_CLOSE_CODE } from '../../src/kernels/channels/client-flow';

const B = 1000;
const GRACE = 5000;

interface FakeWs {
  bufferedAmount: number;
  close: jest.Mock;
  terminate: jest.Mock;
}

function setup(consumers: FakeWs[]) {
  const events: string[] = [];
  const dropped: FakeWs[] = [];
  const flow = new ClientFlow({
    budgetBytes: B,
    graceMs: GRACE,
    consumers: () => consumers.length,
    pauseKernel: () => events.push('pause'),
    resumeKernel: () => events.push('resume'),
    drop: (ws) => {
      dropped.push(ws as unknown as FakeWs);
      consumers.splice(consumers.indexOf(ws as unknown as FakeWs), 1);
    },
    log: () => undefined,
  });
  return { flow, events, dropped };
}

const fake = (): FakeWs => ({ bufferedAmount: 0, close: jest.fn(), terminate: jest.fn() });
const asWs = (f: FakeWs): WebSocket => f as unknown as WebSocket;

beforeEach(() => jest.useFakeTimers());
afterEach(() => jest.useRealTimers());

test('a sole consumer past the budget pauses the kernel once, and resumes it only at half the budget, never closed', () => {
  const a = fake();
  const { flow, events } = setup([a]);
  a.bufferedAmount = B;
  flow.sent(asWs(a));
  expect(events).toEqual([]);
  a.bufferedAmount = B + 1;
  flow.sent(asWs(a));
  flow.sent(asWs(a));
  expect(events).toEqual(['pause']);
  expect(flow.isPaused).toBe(true);
  jest.advanceTimersByTime(10 * GRACE);
  expect(a.close).not.toHaveBeenCalled();
  a.bufferedAmount = B / 2 + 1;
  flow.written(asWs(a));
  expect(events).toEqual(['pause']);
  a.bufferedAmount = B / 2;
  flow.written(asWs(a));
  expect(events).toEqual(['pause', 'resume']);
  expect(flow.isPaused).toBe(false);
});

test('one of several that stays past the budget is closed (1008) after the grace period, and the kernel is read again', () => {
  const slow = fake();
  const reader = fake();
  const { flow, events, dropped } = setup([slow, reader]);
  slow.bufferedAmount = 3 * B;
  flow.sent(asWs(slow));
  expect(events).toEqual(['pause']);
  jest.advanceTimersByTime(GRACE - 1);
  expect(slow.close).not.toHaveBeenCalled();
  jest.advanceTimersByTime(1);
  expect(slow.close).toHaveBeenCalledWith(SLOW_CLIENT_CLOSE_CODE, expect.stringContaining('did not read'));
  expect(dropped).toEqual([slow]);
  expect(events).toEqual(['pause', 'resume']);
  expect(reader.close).not.toHaveBeenCalled();
  jest.advanceTimersByTime(1000);
  expect(slow.terminate).toHaveBeenCalled();
});

test('one of several that catches up within the grace period stays', () => {
  const a = fake();
  const b = fake();
  const { flow, events } = setup([a, b]);
  a.bufferedAmount = 20 * B; // one large burst
  flow.sent(asWs(a));
  jest.advanceTimersByTime(GRACE / 2);
  a.bufferedAmount = 0;
  flow.written(asWs(a));
  jest.advanceTimersByTime(2 * GRACE);
  expect(a.close).not.toHaveBeenCalled();
  expect(events).toEqual(['pause', 'resume']);
});

test('a consumer joining a kernel paused for a sole slow one starts its grace period; if the others leave first, it is only waited for', () => {
  const slow = fake();
  const consumers = [slow];
  const { flow } = setup(consumers);
  slow.bufferedAmount = 2 * B;
  flow.sent(asWs(slow));
  jest.advanceTimersByTime(10 * GRACE);
  expect(slow.close).not.toHaveBeenCalled();
  consumers.push(fake());
  flow.attached();
  jest.advanceTimersByTime(GRACE);
  expect(slow.close).toHaveBeenCalled();

  const alone = fake();
  const others = [alone, fake()];
  const second = setup(others);
  alone.bufferedAmount = 2 * B;
  second.flow.sent(asWs(alone));
  others.pop(); // the other websocket closed before the grace period ended
  jest.advanceTimersByTime(GRACE);
  expect(alone.close).not.toHaveBeenCalled();
  expect(second.flow.isPaused).toBe(true);
});

test('a slow websocket that closes releases the kernel', () => {
  const a = fake();
  const { flow, events } = setup([a, fake()]);
  a.bufferedAmount = 2 * B;
  flow.sent(asWs(a));
  flow.detached(asWs(a));
  expect(events).toEqual(['pause', 'resume']);
  jest.advanceTimersByTime(2 * GRACE);
  expect(a.close).not.toHaveBeenCalled();
});
