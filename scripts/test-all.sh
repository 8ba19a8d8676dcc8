#!/usr/bin/env bash
# The whole test suite on a fresh machine: setup, type-check, lint, jest (unit, integration against
# real Postgres/Redis, end to end against real JupyterHub/Jupyter Server), and the shim's pytest.
# With paths (`bash scripts/test-all.sh tests/helm`), jest runs only those after setup, type-check and lint.
# Last, it stops what this run started for the tests (podman's service) and fails, naming them, if any
# process of the suite is left (scripts/leftover-processes.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

# Become a child subreaper (prctl PR_SET_CHILD_SUBREAPER, which survives exec): everything the suite
# starts, daemonized or orphaned included, then stays a descendant of this shell for the final check.
if [ "${SPAWNGATE_TEST_REAPER:-}" != "$$" ]; then
  [ -x /usr/bin/python3 ] || bash scripts/setup.sh  # a bare machine gets Debian's python3 from setup
  export SPAWNGATE_TEST_REAPER=$$
  exec /usr/bin/python3 -c 'import ctypes, os, sys
if ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) != 0:
    sys.exit("test-all: prctl(PR_SET_CHILD_SUBREAPER) failed: " + os.strerror(ctypes.get_errno()))
os.execvp(sys.argv[1], sys.argv[1:])' bash "$0" "$@"
fi

podman_dir="${SPAWNGATE_PODMAN_DIR:-/tmp/spawngate-podman}"
podman_answering() { curl -fsS --max-time 3 --unix-socket "$podman_dir/podman.sock" http://d/_ping >/dev/null 2>&1; }
podman_was_running=no
podman_answering && podman_was_running=yes

finish() {
  local rc=$?
  trap - EXIT
  # The podman service is stopped if this run started it, or a test restarted it (then it is this
  # run's descendant too): a service that ran before the suite is left alone.
  pid="$(cat "$podman_dir/service.pid" 2>/dev/null || true)"
  # (The list is taken first: under pipefail, `leftover-processes.sh | grep` fails whenever anything is left.)
  ours="$(bash scripts/leftover-processes.sh $$ || true)"
  if [ -n "$pid" ] && { [ "$podman_was_running" = no ] || grep -q "^$pid " <<<"$ours"; }; then
    if kill "$pid" 2>/dev/null; then
      echo "== stopping the podman service this run started ($pid)"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    # aardvark-dns, the DNS server of podman's networks (the docker backend's per-user networks have
    # DNS), is daemonized by podman and outlives the service; it belongs to the service we stop.
    for dns in $(awk '$2 ~ /aardvark-dns$/ {print $1}' <<<"$ours"); do
      echo "== stopping podman's aardvark-dns ($dns)"
      kill "$dns" 2>/dev/null || true
      for _ in $(seq 1 20); do kill -0 "$dns" 2>/dev/null || break; sleep 0.1; done
    done
  fi
  echo "== processes left behind"
  if left="$(bash scripts/leftover-processes.sh $$ --kill)"; then
    echo "none"
  else
    echo "test-all: FAILED: the suite left these processes running (now stopped):" >&2
    echo "$left" >&2
    [ "$rc" -ne 0 ] || rc=1
  fi
  exit "$rc"
}
trap finish EXIT

bash scripts/setup.sh
echo "== typecheck"; npx tsc --noEmit -p tsconfig.json
echo "== lint"; npx eslint . --max-warnings=0
echo "== python-shim (pytest)"; /usr/bin/python3 -m pytest -q python-shim/tests
# PGlite loads Node built-ins with a dynamic import(), which jest allows only with vm modules on.
export NODE_OPTIONS=--experimental-vm-modules
if [ $# -gt 0 ]; then
  npx jest --ci "$@"
  exit 0
fi
echo "== jest: unit and integration (2 workers)"
npx jest --ci --maxWorkers=2 --testPathIgnorePatterns '/tests/(e2e|reliability|images)/'
echo "== jest: end to end, reliability and images (one at a time: they start hubs, servers, many kernels, image builds)"
npx jest --ci --runInBand --testPathPatterns '/tests/(e2e|reliability|images)/'
