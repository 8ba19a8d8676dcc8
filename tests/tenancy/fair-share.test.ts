/**
 * Fair share between users (issue 11): one user's flood of launches that never finish holds at most
 * `max_launches_in_flight_per_user` worker slots, is refused beyond that with 429, and another user's
 * launch proceeds promptly; a client's KERNEL_LAUNCH_TIMEOUT is capped; server starts have their own
 * per-user limits.
 */
import { performance } from 'node:perf_hooks';
import type { Profile } from '../../src/config';
import { LimitExceededError } from '../../src/profiles';
import { IPYKERNEL, startTenantService, type TenantService } from '../gateway/tenant-service';

jest.setTimeout(120_000);

let t: TenantService;

beforeAll(async () => {
  // Six worker slots: alice may hold three; without the limit her flood would take all six.
  t = await startTenantService({
    users: ['alice', 'bob'],
    env: { SPAWNGATE_WORKER_CONCURRENCY: '6' },
    kernels: '  max_launches_in_flight_per_user: 3\n  max_launch_timeout_seconds: 20\n',
    profiles: "  - slug: sleepy\n    display_name: Sleepy\n    command: ['/bin/sleep', '600']\n",
  });
  // A kernel that never answers: its launch holds a worker slot until the launch timeout.
  t.kernelspec('alice', 'sleeper', ['/bin/sleep', '600']);
  t.kernelspec('alice', 'python3', IPYKERNEL);
  t.kernelspec('bob', 'python3', IPYKERNEL);
});

afterAll(async () => {
  await t?.close();
});

test("bob's launch succeeds promptly while alice floods launches of a kernel that never answers", async () => {
  const flood = Array.from({ length: 30 }, () => t.launch('alice', 'sleeper', { KERNEL_LAUNCH_TIMEOUT: '3600' }).then((r) => r));
  // Wait until alice's admitted launches hold their slots.
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const rows = await t.service.db.query<{ n: number }>("SELECT count(*)::int AS n FROM kernels WHERE username = 'alice' AND state = 'starting'");
    if (rows[0]!.n >= 3) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const started = performance.now();
  const bob = await t.launch('bob', 'python3');
  const bobSeconds = (performance.now() - started) / 1000;
  expect(bob.status).toBe(201);
  expect(bobSeconds).toBeLessThan(15);

  const results = await Promise.all(flood);
  const refused = results.filter((r) => r.status === 429);
  // Three were admitted (and time out at the capped 20 s, not 3600 s); every other one was refused at once.
  expect(refused.length).toBe(27);
  expect(refused[0]!.body.message).toMatch(/kernels\.max_launches_in_flight_per_user/);
  expect(Number(refused[0]!.headers['retry-after'])).toBeGreaterThan(0);
  const failed = results.filter((r) => r.status === 500).map((r) => r.body.message as string);
  expect(failed).toHaveLength(3);
  for (const m of failed) expect(m).toMatch(/did not answer kernel_info within 20 s/);
});

test('KERNEL_LAUNCH_TIMEOUT shortens the launch timeout', async () => {
  const started = performance.now();
  const res = await t.launch('alice', 'sleeper', { KERNEL_LAUNCH_TIMEOUT: '2' });
  expect(res.status).toBe(500);
  expect(res.body.message).toMatch(/within 2 s/);
  expect((performance.now() - started) / 1000).toBeLessThan(12);
});

describe('server starts', () => {
  const sleepy = (): Profile => t.service.config.file.profiles.find((p) => p.slug === 'sleepy')!;
  const start = (user: string, serverName: string) =>
    t.service.lifecycle.requestStart({ username: user, serverName, profile: sleepy(), userOptions: {}, env: {}, args: [], startTimeoutSeconds: 60, receivedAt: Date.now() });

  afterAll(async () => {
    for (const name of ['a', 'b', 'c']) await t.service.lifecycle.requestStop('alice', name, 1).catch(() => undefined);
  });

  test('a user may have at most servers.max_spawns_in_flight_per_user starts pending; repeating a pending start is not refused', async () => {
    // Default servers.max_spawns_in_flight_per_user is 3; the sleeping servers never answer HTTP.
    expect((await start('alice', 'a')).created).toBe(true);
    expect((await start('alice', 'b')).created).toBe(true);
    expect((await start('alice', 'c')).created).toBe(true);
    const refused = await start('alice', 'd').catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(LimitExceededError);
    expect((refused as LimitExceededError).limit).toBe('servers.max_spawns_in_flight_per_user');
    expect((refused as LimitExceededError).message).toMatch(/already has 3 servers starting/);
    // The idempotent path: the same pending server again is returned, not refused.
    expect((await start('alice', 'a')).created).toBe(false);
    // Another user is not affected.
    expect((await start('bob', 'x')).created).toBe(true);
    await t.service.lifecycle.requestStop('bob', 'x', 1);
  });
});
