#!/usr/bin/env bash
# Sets up a real container engine behind the Docker API for the docker backend's tests: Debian's
# podman serving the Docker-compatible REST API on a unix socket, and a tiny local image
# `localhost/spawngate-test:latest` made from busybox-static (nothing can be pulled here).
# Idempotent and safe to run concurrently (one flock). Diagnostics go to stderr; the last line on
# stdout is the socket path, e.g. `/tmp/spawngate-podman/podman.sock`.
#
# Environment:
#   SPAWNGATE_PODMAN_DIR   directory for the socket, containers.conf and the service log
#                          (default /tmp/spawngate-podman)
#   SPAWNGATE_TEST_IMAGE   image to build (default localhost/spawngate-test:latest)
#
# Why these settings (as found on Debian bookworm machines without systemd): crun fails there, runc
# works; podman's default ulimits cannot be applied in this sandbox; cgroupfs, not systemd, manages
# cgroups since there is no systemd.
set -euo pipefail

DIR="${SPAWNGATE_PODMAN_DIR:-/tmp/spawngate-podman}"
IMAGE="${SPAWNGATE_TEST_IMAGE:-localhost/spawngate-test:latest}"
SOCK="$DIR/podman.sock"
CONF="$DIR/containers.conf"
RUNTIME=/usr/sbin/runc

log() { echo "setup-podman: $*" >&2; }

mkdir -p "$DIR"
exec 9>"$DIR/setup.lock"
flock -w 600 9

# 1. Packages.
missing=()
for p in podman runc busybox-static curl; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq "${missing[@]}" >&2
fi

# 2. containers.conf (rewritten only when different, so a running service keeps its view).
want_conf='[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
exit_command_delay = 5'
# exit_command_delay: conmon keeps an exec session's exit status for this long (300 s by default),
# lingering after the container is gone; the suite must leave no process behind.
if [ ! -f "$CONF" ] || [ "$(cat "$CONF")" != "$want_conf" ]; then
  printf '%s\n' "$want_conf" >"$CONF"
fi
export CONTAINERS_CONF="$CONF"

# 3. The API service.
answering() { curl -fsS --max-time 3 --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1; }
start_service() {
  log "starting podman system service on $SOCK"
  rm -f "$SOCK"
  # Started from / so that it never keeps (and loses) the caller's directory, e.g. a CI checkout.
  (cd / && exec setsid nohup podman --runtime "$RUNTIME" system service --time=0 "unix://$SOCK" \
    >>"$DIR/service.log" 2>&1 </dev/null 9>&-) &  # 9>&-: the service must not inherit the lock
  echo $! >"$DIR/service.pid"
  for _ in $(seq 1 100); do answering && break; sleep 0.1; done
}
stop_service() {
  [ -f "$DIR/service.pid" ] && kill "$(cat "$DIR/service.pid")" 2>/dev/null || true
  for _ in $(seq 1 50); do answering || break; sleep 0.1; done
}
# A service whose working directory was deleted (started from a checkout that is gone) still answers
# _ping, but conmon then fails every container ("Failed to get working directory"): replace it.
if answering && [ -f "$DIR/service.pid" ] && pid="$(cat "$DIR/service.pid")" && [ -d "/proc/$pid" ] && [ ! -d "$(readlink "/proc/$pid/cwd")" ]; then
  log "podman service $pid lost its working directory; restarting it"
  stop_service
fi
if ! answering; then
  start_service
  if ! answering; then
    log "podman service did not answer on $SOCK; last lines of $DIR/service.log:"
    tail -n 20 "$DIR/service.log" >&2 || true
    exit 1
  fi
fi

# 4. The test image: busybox and its applet links, a passwd/group, a sticky /tmp.
if ! podman --runtime "$RUNTIME" image exists "$IMAGE" 2>/dev/null; then
  log "building $IMAGE from busybox-static"
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  root="$work/rootfs"
  mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/home" "$root/root" "$root/proc" "$root/sys" "$root/dev"
  chmod 1777 "$root/tmp"
  cp /bin/busybox "$root/bin/busybox"
  for applet in $("$root/bin/busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  tar -C "$root" -cf "$work/rootfs.tar" .
  podman --runtime "$RUNTIME" import \
    --change 'CMD ["/bin/sh"]' --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
    "$work/rootfs.tar" "$IMAGE" >&2
fi

# 5. The service must run a container, not just answer: one restart if it cannot (a service left in a
# bad state by an earlier run), then give up with the engine's own message.
runs() { podman --url "unix://$SOCK" run --rm "$IMAGE" true 2>"$DIR/run-check.err"; }
if ! runs; then
  log "podman cannot run a container: $(tail -n 1 "$DIR/run-check.err"); restarting the service"
  stop_service
  start_service
  if ! runs; then
    log "podman still cannot run a container: $(tail -n 3 "$DIR/run-check.err" | tr '\n' ' ')"
    exit 1
  fi
fi

echo "$SOCK"
