/**
 * scripts/leftover-processes.sh, the last step of scripts/test-all.sh: under a child subreaper (as
 * test-all.sh makes itself), a daemonized process the run left behind is found, named and stopped.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';

const REPO = path.resolve(__dirname, '../..');
const SCRIPT = path.join(REPO, 'scripts/leftover-processes.sh');
/** Runs `script` in bash made a child subreaper, the way test-all.sh runs the suite. */
function underSubreaper(script: string): { status: number | null; stdout: string; stderr: string } {
  const reaper = 'import ctypes, os, sys\nassert ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0\nos.execvp(sys.argv[1], sys.argv[1:])';
  const r = spawnSync('/usr/bin/python3', ['-c', reaper, 'bash', '-c', script], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('a daemonized (setsid, orphaned) process is named, stopped, and fails the check', () => {
  const r = underSubreaper(`
    pidfile=$(mktemp)
    (setsid sh -c 'echo $$ > "$0"; exec sleep 417' "$pidfile" </dev/null >/dev/null 2>&1 &)
    sleep 0.3
    bash ${SCRIPT} $$ --kill; echo "rc=$?"
    sleep 0.5
    st=$(awk '{print $3}' /proc/$(cat "$pidfile")/stat 2>/dev/null || true)
    if [ -z "$st" ] || [ "$st" = Z ]; then echo gone; else echo "still-running $st"; fi
    bash ${SCRIPT} $$; echo "rc2=$?"`);
  expect(r.stdout).toMatch(/^\d+ sleep 417$/m);
  expect(r.stdout).toMatch(/^rc=1$/m);
  expect(r.stdout).toMatch(/^gone$/m);
  expect(r.stdout).toMatch(/^rc2=0$/m);
});

test('a run that leaves nothing passes, and processes outside the run are not its business', () => {
  const outside = spawnSync('sh', ['-c', 'sleep 418 >/dev/null 2>&1 & echo $!'], { encoding: 'utf8' });
  const pid = Number(outside.stdout.trim());
  try {
    // called from a command substitution, as test-all.sh does: the subshell in between is not a leftover
    const r = underSubreaper(`left="$(bash ${SCRIPT} $$)"; echo "rc=$? [$left]"`);
    expect(r.stdout.trim()).toBe('rc=0 []');
  } finally {
    process.kill(pid);
  }
});
