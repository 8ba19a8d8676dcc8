/**
 * The embedded engine's lock: who counts as a live holder. A holder killed with -9 is a zombie until its
 * parent reaps it (a parent blocked in spawnSync cannot); it holds nothing and must not block the next process.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { isAlive } from '../../src/db/embedded-lock';
import { eventually } from '../support/wait';

test('a running process is alive; a zombie (exited, not yet reaped) and a gone pid are not', async () => {
  // The Python parent forks a child that exits at once and never waits for it: the child stays a zombie
  // while the parent sleeps.
  const parent = spawn('/usr/bin/python3', ['-c', 'import os, sys, time\npid = os.fork()\nif pid == 0:\n    os._exit(0)\nprint(pid, flush=True)\ntime.sleep(30)'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const zombie = await new Promise<number>((resolve) => parent.stdout.once('data', (d: Buffer) => resolve(Number(String(d).trim()))));
    expect(isAlive(parent.pid!)).toBe(true);
    expect(await eventually(() => /\) Z /.test(readFileSync(`/proc/${zombie}/stat`, 'utf8')), 5_000)).toBe(true);
    expect(isAlive(zombie)).toBe(false);
  } finally {
    parent.kill('SIGKILL');
  }
  await eventually(() => parent.exitCode !== null || parent.signalCode !== null, 5_000);
  expect(isAlive(parent.pid!)).toBe(false);
});
