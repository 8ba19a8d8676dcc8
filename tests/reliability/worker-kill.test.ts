/**
 * `kill -9` of a worker mid-launch. An API process (`serve --no-workers`) and a separate `spawngate
 * worker`, on Postgres and a throwaway Redis; the kernelspec sleeps 3 s in a shell before exec'ing
 * ipykernel, so the launch is slow. The worker is SIGKILLed while the kernel's process exists but has
 * not answered yet, and a new worker is started: BullMQ hands it the stalled job
 * (SPAWNGATE_JOB_LOCK_SECONDS=2, so the dead worker is noticed within seconds), which must adopt or
 * replace the workload. Then exactly one process exists for the kernel id (local-backend records in
 * <data dir>/local/*.json and /proc agree), the client's POST answers 201, the kernel runs code, and
 * after DELETE nothing of it is left.
 *
 * 1. The worker dies after the local backend recorded the process (the usual case).
 * 2. The worker dies the instant its child process appears — possibly before the record is written.
 *    Whether a run hits that window is a matter of timing; when it does, exactly one process must
 *    still remain.
 */
import fs from 'node:fs';
import { Cluster, sleep, waitFor, type Node } from './helpers';

jest.setTimeout(120_000);

let c: Cluster;
let api: Node;

beforeAll(async () => {
  c = await Cluster.create({ redis: true, env: { SPAWNGATE_JOB_LOCK_SECONDS: '2' } });
  api = await c.start('api');
});

afterEach(async () => {
  // Isolate the tests: whatever a failed test left running is killed (the first worker is dead already).
  for (const n of c.nodes.filter((n) => n.role === 'worker')) await n.stop('SIGKILL');
  for (const p of c.taggedProcesses()) process.kill(p.pid, 'SIGKILL');
});

afterAll(async () => {
  await c?.close();
});

/** Children of a process (every thread's), from /proc. */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      out.push(...fs.readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
    } catch {
      // thread gone
    }
  }
  return out;
}

function kernelIdOf(pid: number): string | undefined {
  try {
    return /(?:^|\0)KERNEL_ID=([0-9a-f-]{36})/.exec(fs.readFileSync(`/proc/${pid}/environ`, 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

/** Runs the scenario; `killWhen` resolves with the kernel id once the worker is to be killed. */
async function killMidLaunch(killWhen: (worker: Node) => Promise<{ kernelId: string; pid: number }>) {
  const first = await c.start('worker');
  const started = Date.now();
  const post = c.api<{ id: string; execution_state: string; message?: string }>(api, 'POST', '/api/kernels', c.launchBody('conda-env-tf-slow'), { timeoutMs: 90_000 });
  post.catch(() => undefined);

  const { kernelId, pid: firstPid } = await killWhen(first);
  first.child.kill('SIGKILL');
  await first.exited;
  const killedAt = Date.now() - started;
  const hadRecord = c.records(kernelId).length > 0;
  // Mid-launch: the kernel has not answered yet.
  expect((await c.pg.db.query<{ state: string }>('SELECT state FROM kernels WHERE id = $1', [kernelId]))[0]?.state).toBe('starting');

  const second = await c.start('worker');
  const res = await post;
  const answeredAt = Date.now() - started;
  // Let a second launch attempt (if any) settle, so a duplicate would be visible below.
  await sleep(4_000);
  const records = c.records(kernelId);
  const facts = {
    recordedBeforeKill: hadRecord,
    status: res.status,
    id: res.body.id,
    records: records.map((r) => ({ pid: r.pid, exited: r.exit !== undefined })),
    kernelProcesses: c.kernelProcesses(kernelId).map((p) => `${p.pid} ${p.cmdline.slice(0, 60)}`),
    state: (await c.pg.db.query<{ state: string }>('SELECT state FROM kernels WHERE id = $1', [kernelId]))[0]?.state,
  };
  const onlyPid = records[0]?.pid;
  expect(facts).toEqual({
    recordedBeforeKill: hadRecord,
    status: 201,
    id: kernelId,
    records: [{ pid: onlyPid, exited: false }],
    kernelProcesses: [expect.stringContaining(`${onlyPid} ${'/usr/bin/python3 -m ipykernel_launcher'}`)],
    state: 'running',
  });
  // No other process of this test (a second launch's shell or python) runs.
  expect(c.taggedProcesses().map((p) => p.pid)).toEqual([onlyPid]);

  // Usable.
  const ws = await c.connect(api, kernelId);
  try {
    expect((await ws.execute('6*7')).results).toEqual(['42']);
  } finally {
    ws.close();
  }
  // Shut down: no orphan remains (no process, no record).
  expect((await c.api(api, 'DELETE', `/api/kernels/${kernelId}`)).status).toBe(204);
  await waitFor('kernel processes gone', async () => c.taggedProcesses().length === 0, 10_000);
  expect(c.records(kernelId)).toEqual([]);
  expect(second.child.exitCode).toBeNull();
  console.log(
    `worker killed ${killedAt} ms after POST (${hadRecord ? 'process recorded' : 'before its record was written'}); ` +
      `the new worker ${onlyPid === firstPid ? 'adopted' : 'replaced'} the workload; POST answered 201 after ${answeredAt} ms`,
  );
}

test('a worker killed mid-launch after recording the workload: the retried job adopts it, one kernel process, 201', async () => {
  await killMidLaunch(async () =>
    waitFor(
      'the recorded kernel workload, still in its sleep',
      async () => {
        const shell = c.taggedProcesses().find((p) => p.cmdline.startsWith('/bin/sh -c sleep 3'));
        const kernelId = shell && kernelIdOf(shell.pid);
        return kernelId && c.records(kernelId).length === 1 ? { kernelId, pid: shell.pid } : undefined;
      },
      15_000,
      20,
    ),
  );
});

test('a worker killed the instant its kernel process appears: still exactly one kernel process, 201', async () => {
  await killMidLaunch(async (worker) => {
    const deadline = Date.now() + 15_000;
    const pid = worker.child.pid!;
    // A tight loop on the worker's children: the kill lands within a millisecond or so of the spawn.
    while (Date.now() < deadline) {
      await new Promise((r) => setImmediate(r)); // let this process's own I/O (the POST) proceed
      for (const child of childrenOf(pid)) {
        const kernelId = kernelIdOf(child);
        if (kernelId) return { kernelId, pid: child };
      }
    }
    throw new Error('the worker started no kernel process');
  });
});
