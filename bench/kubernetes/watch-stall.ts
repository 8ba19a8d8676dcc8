/**
 * Time from a silently stalled pod watch to recovery (issue 18): the API stand-in
 * (tests/backends/kubernetes/fake-apiserver.ts) keeps the watch connection open with its headers sent
 * and then sends nothing — no events, no bookmarks — as a dead load balancer or node leaves it. During
 * the stall a pod of ours is deleted by someone else. Two figures per code path:
 *
 * - watch: time until the backend's watch listeners get the pod's `missing` (nobody calls state(); only
 *   the watch can bring the news);
 * - state(): time until `state(pod)` says `missing`, polled every 100 ms as the launch paths do.
 *
 * "old flags" is the old behaviour reproduced on the new code by options: no bookmark watchdog (`watch.stallMs: 0`) and no
 * timeout within the run (`podTimeoutSeconds: [3600, 3600]`) — the old code asked for no
 * timeoutSeconds and had no watchdog, so the same frozen connection stays in use and state() serves the
 * frozen cache. On a real cluster it ends only when TCP keepalive gives up (about 11 minutes on Linux
 * defaults with client-node's 30 s keepalive) or at the server's own timeout (30–60 min). The bench stops
 * waiting after `--cap-s`.
 *
 * "old code" (with `--old-src DIR`): the kubernetes backend of an older checkout, run unchanged against
 * the same stand-in — e.g. the commit before issue 18's watch work:
 *   mkdir /tmp/old && git archive 1f8fc9d src tsconfig.json package.json | tar -x -C /tmp/old \
 *     && ln -s "$PWD/node_modules" /tmp/old/node_modules
 *   npx tsx bench/kubernetes/watch-stall.ts --old-src /tmp/old
 *
 * "after" is the new code at real-cluster ratios scaled down by --scale: the stand-in sends a bookmark
 * every 60 s / scale and the watchdog bound is 90 s / scale (the default `watch.stallMs`).
 *
 *   npx tsx bench/kubernetes/watch-stall.ts [--scale 20] [--cap-s 30] [--runs 3]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import winston from 'winston';
import os from 'node:os';
import path from 'node:path';
import { createKubernetesBackend, type KubernetesBackendOptions } from '../../src/backends/kubernetes';
import { FakeApiServer, readDocumentedRole } from '../../tests/backends/kubernetes/fake-apiserver';

const argv = process.argv.slice(2);
const opt = (name: string, def: number) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : def;
};
const SCALE = opt('scale', 20);
const CAP_MS = opt('cap-s', 30) * 1000;
const RUNS = opt('runs', 3);
const OLD_SRC = (() => {
  const i = argv.indexOf('--old-src');
  return i >= 0 ? argv[i + 1] : undefined;
})();
type Factory = typeof createKubernetesBackend;
const BOOKMARK_MS = 60_000 / SCALE;
const silent = winston.createLogger({ silent: true });

const modes: Record<string, KubernetesBackendOptions['watch']> = {
  'old flags': { stallMs: 0, podTimeoutSeconds: [3600, 3600], eventsTimeoutSeconds: [3600, 3600] },
  after: { stallMs: 90_000 / SCALE },
};

async function factoryFor(mode: string): Promise<Factory> {
  if (mode !== 'old code') return createKubernetesBackend;
  const mod = (await import(path.resolve(OLD_SRC!, 'src/backends/kubernetes/index.ts'))) as { createKubernetesBackend: Factory };
  return mod.createKubernetesBackend;
}

async function once(mode: string, how: 'watch' | 'state'): Promise<number | undefined> {
  const create = await factoryFor(mode);
  const role = readDocumentedRole();
  const fake = await new FakeApiServer({ namespace: role.namespace, rules: role.rules, bookmarkMs: BOOKMARK_MS, validate: false }).start();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sg-bench-stall-'));
  const backend = create({ namespace: role.namespace, kubeconfig: { from: 'file', path: fake.writeKubeconfig(dir) }, logger: silent, watch: modes[mode] });
  try {
    const name = `bench-stall-${process.pid}`;
    await backend.ensure({ name, kind: 'kernel', labels: {}, command: ['/bin/true'], env: {}, image: 'registry.example/kernel:1' });
    for (let i = 0; i < 200 && (await backend.state(name)).phase !== 'running'; i++) await new Promise((r) => setTimeout(r, 25));
    // Let a bookmark or two arrive, as on a watch that has been healthy for a while.
    await new Promise((r) => setTimeout(r, BOOKMARK_MS * 1.5));
    let seenAt: number | undefined;
    backend.watch((e) => {
      if (e.name === name && e.state?.phase === 'missing') seenAt ??= Date.now();
    });
    fake.stallWatches();
    const t0 = Date.now();
    fake.deleteExternally(name);
    while (Date.now() - t0 < CAP_MS && seenAt === undefined) {
      if (how === 'state' && (await backend.state(name)).phase === 'missing') seenAt = Date.now();
      await new Promise((r) => setTimeout(r, 100));
    }
    return seenAt === undefined ? undefined : seenAt - t0;
  } finally {
    await backend.close();
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const fmt = (ms: number | undefined) => (ms === undefined ? `> ${CAP_MS / 1000} s (not recovered)` : `${(ms / 1000).toFixed(2)} s`);

async function main(): Promise<void> {
  console.log(`stalled pod watch → recovery; bookmark every ${BOOKMARK_MS} ms, watchdog ${90_000 / SCALE} ms (real-cluster 60 s / 90 s ÷ ${SCALE}); ${RUNS} runs each`);
  console.log('mode       figure    median         runs');
  for (const mode of [...(OLD_SRC ? ['old code'] : []), ...Object.keys(modes)]) {
    for (const how of ['watch', 'state'] as const) {
      const results: (number | undefined)[] = [];
      for (let i = 0; i < RUNS; i++) results.push(await once(mode, how));
      const sorted = [...results].sort((a, b) => (a ?? Infinity) - (b ?? Infinity));
      console.log(`${mode.padEnd(10)} ${how.padEnd(9)} ${fmt(sorted[Math.floor(sorted.length / 2)]).padEnd(14)} ${results.map(fmt).join(', ')}`);
    }
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
