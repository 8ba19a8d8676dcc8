/**
 * The kubernetes backend against what a real API server does to long watches and deletes (the
 * stand-in's apiserver-watch.ts): server-side timeouts, no bookmarks on events, 410 after compaction,
 * 429/5xx answers, ERROR-then-close, a silently stalled connection; graceful vs force deletes and a
 * kubelet that never confirms; two installations (instances) in one namespace.
 */
import type { KubernetesBackendOptions } from '../../../src/backends/kubernetes';
import type { WorkloadEvent, WorkloadSpec } from '../../../src/backends/types';
import { SLEEP_FOREVER } from '../contract';
import { eventually, pollUntil, sleep } from '../../support/wait';
import { standIn } from './stand-in';

jest.setTimeout(60_000);

const PY = '/usr/bin/python3';
const IGNORE_TERM = 'import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint("ready", flush=True)\nwhile True: time.sleep(60)';

const fast: KubernetesBackendOptions['watch'] = {
  podTimeoutSeconds: [1, 2],
  eventsTimeoutSeconds: [1, 1],
  stallMs: 1500,
  deadlineSlackMs: 1000,
  backoffMaxMs: 1000,
  resetAfterMs: 5000,
};

let n = 0;
const name = () => `sg-h18w-${process.pid}-${++n}`;
const setup = (extra: Partial<KubernetesBackendOptions> = {}) => standIn({ rewatchDelayMs: 200, watch: fast, ...extra });

function makeSpec(overrides: Partial<WorkloadSpec> = {}): WorkloadSpec {
  return { name: name(), kind: 'kernel', labels: {}, command: [PY, '-c', SLEEP_FOREVER], env: {}, image: 'quay.io/jupyter/base-notebook:2025-01-01', ...overrides };
}

const progressOf = (events: WorkloadEvent[], pod: string) => events.filter((e) => e.name === pod && e.type === 'progress').map((e) => e.message ?? '');

describe('kubernetes backend: watches', () => {
  let env: Awaited<ReturnType<typeof standIn>>;
  afterEach(async () => env.cleanup());

  test('every watch has a server-side timeout; pods ask for bookmarks; after the server closes both watches resume without relisting', async () => {
    env = await setup();
    const { fake, make } = env;
    const backend = make();
    const events: WorkloadEvent[] = [];
    backend.watch((e) => events.push(e));
    await backend.state('nothing');
    await sleep(3500); // each watch timed out at least once
    const pods = fake.behaviour.watches.filter((w) => w.resource === 'pods');
    const evs = fake.behaviour.watches.filter((w) => w.resource === 'events');
    expect(pods.length).toBeGreaterThanOrEqual(2);
    expect(evs.length).toBeGreaterThanOrEqual(2);
    for (const w of pods) expect(w).toMatchObject({ bookmarks: true, timeoutSeconds: expect.any(Number) });
    for (const w of pods) expect([1, 2]).toContain(w.timeoutSeconds);
    for (const w of evs) expect(w).toMatchObject({ bookmarks: false, timeoutSeconds: 1 });
    expect(evs.slice(1).every((w) => w.resourceVersion)).toBe(true); // resumed, not restarted from scratch
    const lists = fake.requests.filter((r) => r.verb === 'list' && r.resource === 'pods').length;
    expect(lists).toBe(1);
    // The resumed watches still deliver: a new pod's state and its progress.
    const spec = makeSpec();
    await backend.ensure(spec);
    await pollUntil(() => backend.state(spec.name), (s) => s.phase === 'running');
    expect(await eventually(() => progressOf(events, spec.name).some((m) => m.startsWith('Started')), 5000)).toBe(true);
  });

  test('a silently stalled pod watch is found by its watchdog; meanwhile state() reads through instead of serving the frozen cache', async () => {
    env = await setup({ watch: { ...fast, podTimeoutSeconds: [60, 60], stallMs: 1500 } });
    const { fake, make } = env;
    const backend = make();
    const spec = makeSpec();
    await backend.ensure(spec);
    await pollUntil(() => backend.state(spec.name), (s) => s.phase === 'running');
    const watchesBefore = fake.behaviour.watches.filter((w) => w.resource === 'pods').length;
    fake.stallWatches();
    // The restarted watch keeps failing for a while: only the read-through can see the change.
    fake.behaviour.failNext('watch', 'pods', 503, 1000);
    fake.deleteExternally(spec.name);
    const t0 = Date.now();
    const seen = await pollUntil(() => backend.state(spec.name), (s) => s.phase === 'missing', 10_000, 50);
    expect(seen.phase).toBe('missing');
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(fake.requests.some((r) => r.verb === 'get' && r.name === spec.name)).toBe(true);
    // The watchdog ended the stalled connection and retried (with backoff, not in a loop).
    expect(await eventually(() => fake.behaviour.requests.filter((r) => r.verb === 'watch' && r.resource === 'pods').length > watchesBefore, 3000)).toBe(true);
    await sleep(1000);
    const failedWatches = fake.behaviour.requests.filter((r) => r.verb === 'watch' && r.resource === 'pods').length - watchesBefore;
    expect(failedWatches).toBeGreaterThanOrEqual(1);
    expect(failedWatches).toBeLessThan(10);
    fake.behaviour.clearFailures();
    // Once a watch is back, state() is served from the cache again: no GET per call.
    const other = makeSpec();
    await backend.ensure(other);
    await pollUntil(() => backend.state(other.name), (s) => s.phase === 'running', 15_000);
    expect(await eventually(() => fake.openWatches('pods') >= 1 && fake.behaviour.watches.filter((w) => w.resource === 'pods').length > watchesBefore, 5000)).toBe(true);
    await sleep(500);
    const gets = fake.requests.filter((r) => r.verb === 'get').length;
    for (let i = 0; i < 20; i++) await backend.state(other.name);
    expect(fake.requests.filter((r) => r.verb === 'get').length).toBe(gets);
  });

  test('the events watch gets no bookmarks; after compaction its resume gets 410 and it starts afresh; progress keeps flowing', async () => {
    env = await setup();
    const { fake, make } = env;
    const backend = make();
    const events: WorkloadEvent[] = [];
    backend.watch((e) => events.push(e));
    await backend.state('nothing');
    await sleep(300);
    const eventLists = () => fake.requests.filter((r) => r.verb === 'list' && r.resource === 'events').length;
    expect(eventLists()).toBe(1);
    // Other objects change (no event), then compaction: the events watch's last version is too old.
    fake.advanceVersion();
    fake.compact();
    expect(await eventually(() => eventLists() >= 2, 5000)).toBe(true); // at its timeout, the resume got 410: a fresh list
    const spec = makeSpec();
    await backend.ensure(spec);
    expect(await eventually(() => progressOf(events, spec.name).some((m) => m.startsWith('Started')), 8000)).toBe(true);
  });

  test('an ERROR event then a clean close restarts the events watch with backoff, not in a hot loop', async () => {
    env = await setup();
    const { fake, make } = env;
    const backend = make();
    const events: WorkloadEvent[] = [];
    backend.watch((e) => events.push(e));
    await backend.state('nothing');
    fake.behaviour.errorWatches('events', 500);
    const from = fake.behaviour.requests.length;
    await sleep(3000);
    const attempts = fake.behaviour.requests.slice(from).filter((r) => r.verb === 'watch' && r.resource === 'events');
    // 200 ms doubling, jittered, capped at 1 s: a handful in 3 s (a hot loop would make hundreds).
    expect(attempts.length).toBeGreaterThanOrEqual(2);
    expect(attempts.length).toBeLessThanOrEqual(8);
    fake.behaviour.errorWatches('events', undefined);
    await sleep(1200);
    const spec = makeSpec();
    await backend.ensure(spec);
    expect(await eventually(() => progressOf(events, spec.name).some((m) => m.startsWith('Started')), 8000)).toBe(true);
  });

  test('429 with Retry-After on the relist is honoured; 5xx on the watch backs off and recovers', async () => {
    env = await setup({ watch: { ...fast, podTimeoutSeconds: [60, 60] } });
    const { fake, make } = env;
    const backend = make();
    const events: WorkloadEvent[] = [];
    backend.watch((e) => events.push(e));
    await backend.state('nothing');
    fake.behaviour.failNext('list', 'pods', 429, 1, 2);
    fake.advanceVersion(); // the version moves on...
    fake.compact(); // ...and the watch's own expires
    fake.dropWatches(); // resume → 410 → relist → 429 Retry-After: 2
    expect(await eventually(() => fake.behaviour.requests.filter((r) => r.verb === 'list' && r.resource === 'pods').length >= 3, 8000)).toBe(true);
    const lists = fake.behaviour.requests.filter((r) => r.verb === 'list' && r.resource === 'pods');
    expect(lists[2]!.at - lists[1]!.at).toBeGreaterThanOrEqual(1900);

    fake.behaviour.failNext('watch', 'pods', 500, 3);
    fake.dropWatches();
    const spec = makeSpec();
    await backend.ensure(spec);
    await sleep(200);
    fake.deleteExternally(spec.name);
    expect(await eventually(() => events.some((e) => e.name === spec.name && e.state?.phase === 'missing'), 10_000)).toBe(true);
    // Each retry after a 500 waited (at least the jittered half of 200, 400, 800 ms), none was immediate.
    const watches = fake.behaviour.requests.filter((r) => r.verb === 'watch' && r.resource === 'pods');
    const failed = watches.flatMap((w, i) => (w.failedWith === 500 && watches[i + 1] ? [watches[i + 1]!.at - w.at] : []));
    expect(failed).toHaveLength(3);
    for (const gap of failed) expect(gap).toBeGreaterThanOrEqual(90);
  });
});

describe('kubernetes backend: deletes', () => {
  let env: Awaited<ReturnType<typeof standIn>>;
  afterEach(async () => env.cleanup());

  test('stop deletes with the grace period; SIGTERM ignored → SIGKILL after it; never a force delete while the container runs', async () => {
    env = await setup();
    const { fake, make } = env;
    const backend = make();
    const spec = makeSpec({ command: [PY, '-c', IGNORE_TERM] });
    await backend.ensure(spec);
    await pollUntil(() => backend.state(spec.name), (s) => s.phase === 'running');
    await pollUntil(() => backend.logs(spec.name, 5), (l) => l.includes('ready')); // SIGTERM is ignored from here on
    const events: WorkloadEvent[] = [];
    backend.watch((e) => events.push(e));
    const t0 = Date.now();
    await backend.stop(spec.name, { graceSeconds: 2 });
    // The kubelet reported the container killed (137) before the pod went: that is our delete, not a crash.
    const reasons = events.filter((e) => e.type === 'state' && e.state?.phase !== 'running').map((e) => e.state?.reason);
    expect(reasons.length).toBeGreaterThan(0);
    expect(reasons.every((r) => r === 'pod deleted by spawngate')).toBe(true);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1900);
    expect(fake.pods.has(spec.name)).toBe(false);
    expect(fake.containerRunning(spec.name)).toBe(false);
    expect(fake.behaviour.deletes).toEqual([expect.objectContaining({ name: spec.name, grace: 2, containerRunning: true })]);
  });

  test('stop with grace 0 still asks for 1 s (0 is a force delete): the object outlives the container', async () => {
    env = await setup();
    const { fake, make } = env;
    const backend = make();
    const spec = makeSpec();
    await backend.ensure(spec);
    await pollUntil(() => backend.state(spec.name), (s) => s.phase === 'running');
    expect(await eventually(() => fake.containerRunning(spec.name), 5000)).toBe(true);
    await backend.stop(spec.name, { graceSeconds: 0 });
    expect(fake.containerRunning(spec.name)).toBe(false);
    expect(fake.behaviour.deletes.map((d) => d.grace)).toEqual([1]);
  });

  test('the stand-in: a force delete removes the object at once while the container still runs', async () => {
    env = await setup();
    const { fake, make } = env;
    const backend = make();
    const spec = makeSpec();
    await backend.ensure(spec);
    await pollUntil(() => backend.state(spec.name), (s) => s.phase === 'running');
    expect(await eventually(() => fake.containerRunning(spec.name), 5000)).toBe(true);
    const res = await fetch(`${fake.url}/api/v1/namespaces/${fake.namespace}/pods/${spec.name}?gracePeriodSeconds=0`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${fake.token}` },
    });
    expect(res.status).toBe(200);
    expect(fake.pods.has(spec.name)).toBe(false);
    expect(fake.containerRunning(spec.name)).toBe(true);
    expect(await eventually(() => !fake.containerRunning(spec.name), 5000)).toBe(true);
  });

  test('a pod the kubelet reported terminated but never removed is force-deleted after the grace', async () => {
    env = await setup();
    const { fake, make } = env;
    const backend = make();
    const spec = makeSpec();
    await backend.ensure(spec);
    await pollUntil(() => backend.state(spec.name), (s) => s.phase === 'running');
    fake.behaviour.kubelet = 'no-final-delete';
    await backend.stop(spec.name, { graceSeconds: 1 });
    expect(fake.pods.has(spec.name)).toBe(false);
    const [graceful, force, ...more] = fake.behaviour.deletes;
    expect(more).toEqual([]);
    expect(graceful).toMatchObject({ grace: 1, containerRunning: true });
    expect(force).toMatchObject({ grace: 0, containerRunning: false, terminating: true });
    expect(force!.at - graceful!.at).toBeGreaterThanOrEqual(1000);
  });

  test('a pod whose kubelet never confirms (node unreachable) is not force-deleted; stop waits until it is really gone', async () => {
    env = await setup();
    const { fake, make } = env;
    const backend = make();
    const spec = makeSpec();
    await backend.ensure(spec);
    await pollUntil(() => backend.state(spec.name), (s) => s.phase === 'running');
    fake.behaviour.kubelet = 'down';
    let resolved = false;
    const stopping = backend.stop(spec.name, { graceSeconds: 1 }).then(() => (resolved = true));
    await sleep(5000);
    expect(resolved).toBe(false);
    expect(fake.behaviour.deletes.map((d) => d.grace)).toEqual([1]);
    expect(fake.pods.get(spec.name)?.metadata.deletionTimestamp).toBeTruthy();
    fake.behaviour.kubelet = 'ok';
    fake.removePodSilently(spec.name); // the node comes back and the kubelet finishes
    await stopping;
    expect(resolved).toBe(true);
  });
});

describe('kubernetes backend: instances', () => {
  let env: Awaited<ReturnType<typeof standIn>>;
  afterEach(async () => env.cleanup());

  test('two installations in one namespace (different instances) neither list nor delete each other\'s pods', async () => {
    env = await setup();
    const { fake, make } = env;
    const a = make({ instance: 'release-a' });
    const b = make({ instance: 'release-b' });
    const pa = makeSpec();
    const pb = makeSpec();
    await a.ensure(pa);
    await b.ensure(pb);
    await pollUntil(() => a.state(pa.name), (s) => s.phase === 'running');
    await pollUntil(() => b.state(pb.name), (s) => s.phase === 'running');
    expect((await a.list()).map((s) => s.name)).toEqual([pa.name]);
    expect((await b.list()).map((s) => s.name)).toEqual([pb.name]);
    expect(a.has(pb.name)).toBe(false);
    expect(fake.requests.filter((r) => r.verb === 'list' && r.resource === 'pods').length).toBeGreaterThan(0);
    await a.close({ stopAll: true }); // a's reconcile/shutdown: only its own pods
    expect(fake.pods.has(pa.name)).toBe(false);
    expect(fake.pods.has(pb.name)).toBe(true);
    expect((await b.state(pb.name)).phase).toBe('running');
  });
});
