#!/usr/bin/env bash
# Builds chart-render from Debian's Go packages only (GOPATH mode, no module download):
#   bash tools/chart-render/build.sh OUTPUT_BINARY
# As root it installs the Debian packages that are missing; otherwise it says which to install.
set -euo pipefail
out="${1:?usage: build.sh OUTPUT_BINARY}"
here="$(cd "$(dirname "$0")" && pwd)"
DEBS=(golang-go golang-github-masterminds-sprig-dev golang-github-ghodss-yaml-dev golang-gopkg-yaml.v2-dev)
missing=()
for p in "${DEBS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then echo "chart-render: install the Debian packages ${missing[*]}" >&2; exit 1; fi
  echo "chart-render: installing Debian packages: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${missing[@]}" >&2
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# GOPATH mode resolves imports from Debian's /usr/share/gocode; GOPROXY=off makes any missing package
# an error instead of a download. The source is copied into a private GOPATH because Go resolves
# `.../v3` import paths (sprig, semver) in GOPATH mode only for a package inside a GOPATH with a
# go.mod (which only names it; nothing is downloaded). The build
# cache is private too, so concurrent builds never share state.
src="$work/gopath/src/spawngate/chart-render"
mkdir -p "$src"
cp "$here"/*.go "$here/go.mod" "$src/"
(cd "$src" && env GO111MODULE=off GOPROXY=off GOFLAGS= GOPATH="$work/gopath:/usr/share/gocode" GOCACHE="$work/cache" \
  go build -trimpath -o "$work/chart-render" .)
mkdir -p "$(dirname "$out")"
mv "$work/chart-render" "$out"
