#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh Debian bookworm machine: Debian packages
# (JupyterHub 3.0, Jupyter Server 1.23, ipykernel, pytest, podman, Go + sprig for the chart renderer,
# python3-cryptography for the Enterprise Gateway test launcher, curl and procps for the scripts),
# npm packages, the compiled service, and a Python environment with the spawngate shim installed. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBS=(jupyterhub python3-jupyter-server python3-ipykernel python3-pytest python3-setuptools python3-pip python3-venv
      postgresql redis-server busybox-static podman runc util-linux curl procps
      python3-cryptography chromium debootstrap
      golang-go golang-github-masterminds-sprig-dev golang-github-ghodss-yaml-dev golang-gopkg-yaml.v2-dev)
missing=()
for p in "${DEBS[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Postgres and Redis: start them if they are not answering.
if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
fi
for i in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
# Tests connect as root over TCP with trust auth (the machine's default); make sure the role exists.
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='root'\"" | grep -q 1 \
  || su postgres -c "psql -qc 'CREATE ROLE root SUPERUSER LOGIN'"
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname='test'\"" | grep -q 1 \
  || su postgres -c "createdb -O root test"

# `npm ci`: exactly the lock file (complete for every platform; install scripts are reviewed in
# package.json's allowScripts, none is needed). It runs the prepare script, which builds dist/. An
# install that already matches the lock file (npm's hidden lock written after it) is only rebuilt.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
else
  npm run --silent build
fi

# The Helm chart tests render with `helm template`, or where helm is absent with tools/chart-render
# (Helm's engine rebuilt from Debian's Go packages). Built once into the cache the tests read.
if ! command -v helm >/dev/null 2>&1; then
  echo "setup: helm not found; chart tests render with tools/chart-render: $(npx tsx -e \
    "console.log(require('./tests/helm/chart-render.ts').chartRenderBinary())")"
fi

# A venv that sees Debian's JupyterHub and has the shim installed as a real package (entry point
# `jupyterhub.spawners: spawngate`), exactly as `pip install ./python-shim` would on a hub.
if [ ! -x .venv-hub/bin/python ]; then /usr/bin/python3 -m venv --system-site-packages .venv-hub; fi
.venv-hub/bin/python -m pip install -q --no-deps --no-build-isolation --no-index ./python-shim
# The container engine for the docker backend's tests: podman's Docker API and the busybox test image.
# A machine that cannot run containers still runs everything else; those tests then skip, saying why.
if ! podman_sock="$(bash scripts/setup-podman.sh)"; then
  echo "setup: WARNING: podman could not be set up (see above); the docker backend tests will be SKIPPED" >&2
else
  echo "setup: podman's Docker API answers on ${podman_sock##*$'\n'}"
fi
echo "setup: done"
