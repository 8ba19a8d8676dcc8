#!/usr/bin/env bash
# Lists the processes a test run left behind: every live descendant of ROOT_PID (scripts/test-all.sh,
# which makes itself a child subreaper so that daemonized and orphaned processes — a podman service,
# a redis-server, a hub, a kernel started with setsid — stay its descendants instead of moving to
# init), except this check itself (and the shells that called it) and the machine's own Postgres cluster and Redis on 6379, which setup
# may have started for everyone. Prints "pid command" lines; exit status 1 when there are any.
#   bash scripts/leftover-processes.sh ROOT_PID [--kill]
# --kill also ends them (SIGTERM, then SIGKILL after 5 s), so a failed run leaves nothing either.
set -euo pipefail
root="${1:?usage: leftover-processes.sh ROOT_PID [--kill]}"
self=$$

list() {
  ps -eo pid=,ppid=,stat=,args= | awk -v root="$root" -v self="$self" '
    { p = $1; pid[NR] = p; ppid[p] = $2; stat[p] = $3; $1 = $2 = $3 = ""; sub(/^ +/, ""); args[p] = $0 }
    # The machine services: the distribution Postgres cluster and Redis on the default port.
    function machine(p) { return args[p] ~ /^\/usr\/lib\/postgresql\/[0-9]+\/bin\/postgres -D \/var\/lib\/postgresql\// || args[p] ~ /^redis-server (127\.0\.0\.1|\*|0\.0\.0\.0):6379( |$)/ }
    function under(p, a,   n) { for (n = 0; p != "" && p > 1 && n < 100; n++) { if (p == a) return 1; p = ppid[p] } return 0 }
    function excluded(p,   n) { for (n = 0; p != "" && p > 1 && n < 100; n++) { if (p == self || machine(p)) return 1; if (p == root) return 0; p = ppid[p] } return 0 }
    END {
      # The shells between the run and this check (e.g. a command substitution) are not leftovers.
      for (a = ppid[self]; a != "" && a != root && a > 1; a = ppid[a]) caller[a] = 1
      for (i = 1; i <= NR; i++) {
        p = pid[i]
        if (p == root || (p in caller) || stat[p] ~ /^Z/ || !under(p, root) || excluded(p)) continue
        print p " " args[p]
      }
    }'
}

left="$(list)"
[ -z "$left" ] && exit 0
echo "$left"
if [ "${2:-}" = "--kill" ]; then
  pids=$(echo "$left" | awk '{print $1}')
  kill -TERM $pids 2>/dev/null || true
  for _ in $(seq 1 50); do
    alive=""; for p in $pids; do kill -0 "$p" 2>/dev/null && alive="$alive $p"; done
    [ -z "$alive" ] && break; sleep 0.1
  done
  [ -n "${alive:-}" ] && kill -KILL $alive 2>/dev/null || true
fi
exit 1
