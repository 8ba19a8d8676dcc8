/**
 * The local backend runs workloads at a lower CPU priority than spawngate (niceIncrement), so a burst
 * of starting servers cannot starve the service; what the workload starts inherits it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createLocalBackend, type LocalBackend } from '../../src/backends';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sg-nice-'));
let backend: LocalBackend | undefined;

afterEach(async () => {
  await backend?.stop('sg-nice-probe', { graceSeconds: 1 });
  await backend?.close();
  backend = undefined;
});

/** The nice value of a process, from /proc/<pid>/stat (field 19). */
function niceOf(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
}

test.each([
  [7, Math.min(19, os.getPriority() + 7)],
  [0, os.getPriority()],
])('niceIncrement %i: the workload and its children run at nice %i', async (increment, expected) => {
  backend = createLocalBackend({ stateDir: path.join(dir, `state-${increment}`), niceIncrement: increment });
  const pidFile = path.join(dir, `child-${increment}`);
  const state = await backend.ensure({
    name: 'sg-nice-probe',
    kind: 'kernel',
    labels: {},
    command: ['/bin/sh', '-c', `sleep 30 & echo $! > ${pidFile}; wait`],
    env: {},
  });
  const pid = (state.ref as { pid: number }).pid;
  const started = Date.now();
  while (!fs.existsSync(pidFile) || !fs.readFileSync(pidFile, 'utf8').trim()) {
    if (Date.now() - started > 5000) throw new Error('the workload did not start its child');
    await new Promise((r) => setTimeout(r, 20));
  }
  expect(niceOf(Number(fs.readFileSync(pidFile, 'utf8')))).toBe(expected);
  expect(niceOf(pid)).toBe(expected);
  // Under autogroup scheduling the workload's session (its own, setsid) must carry the nice value too,
  // or its processes compete with spawngate's whole session as equals.
  if (fs.existsSync('/proc/self/autogroup')) {
    expect(fs.readFileSync(`/proc/${pid}/autogroup`, 'utf8')).toMatch(new RegExp(` nice ${increment > 0 ? expected : 0}\\s*$`));
  } else {
    expect(fs.existsSync(`/proc/${pid}/autogroup`)).toBe(false);
  }
});
