/** The reconnect backoff and Retry-After parsing the watches use (the watch behaviour itself: watch-delete.test.ts). */
import { Backoff, retryAfterMs } from '../../../src/backends/kubernetes/watch-guard';

describe('Backoff', () => {
  test('doubles from the initial delay, jittered within [half, full], capped, and starts over after reset', () => {
    const low = new Backoff({ initialMs: 100, maxMs: 1000 }, () => 0);
    const high = new Backoff({ initialMs: 100, maxMs: 1000 }, () => 1);
    expect([1, 2, 3, 4, 5, 6].map(() => low.next())).toEqual([50, 100, 200, 400, 500, 500]);
    expect([1, 2, 3, 4, 5, 6].map(() => high.next())).toEqual([100, 200, 400, 800, 1000, 1000]);
    low.reset();
    expect(low.next()).toBe(50);
  });

  test('never less than a Retry-After; many failures do not overflow', () => {
    const b = new Backoff({ initialMs: 100, maxMs: 30_000 }, () => 0.5);
    expect(b.next(2000)).toBe(2000);
    for (let i = 0; i < 2000; i++) b.next();
    expect(b.next()).toBe(22_500);
  });
});

describe('retryAfterMs', () => {
  test('reads seconds from the API exception headers; garbage, absence and huge values are handled', () => {
    expect(retryAfterMs({ headers: { 'retry-after': '3' } })).toBe(3000);
    expect(retryAfterMs({ headers: { 'Retry-After': ['2'] } })).toBe(2000);
    expect(retryAfterMs({ headers: { 'retry-after': 'soon' } })).toBe(0);
    expect(retryAfterMs({ headers: { 'retry-after': '-4' } })).toBe(0);
    expect(retryAfterMs({ headers: { 'retry-after': '99999' } })).toBe(600_000);
    expect(retryAfterMs(new Error('no headers'))).toBe(0);
    expect(retryAfterMs(undefined)).toBe(0);
  });
});
