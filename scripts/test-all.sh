#!/usr/bin/env bash
# The whole test suite on a fresh machine: setup, type-check, lint, jest (unit, integration against
# real Postgres/Redis, end to end against real JupyterHub/Jupyter Server), and the shim's pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "== typecheck"; npx tsc --noEmit -p tsconfig.json
echo "== lint"; npx eslint . --max-warnings=0
echo "== python-shim (pytest)"; /usr/bin/python3 -m pytest -q python-shim/tests
# PGlite loads Node built-ins with a dynamic import(), which jest allows only with vm modules on.
export NODE_OPTIONS=--experimental-vm-modules
if [ $# -gt 0 ]; then exec npx jest --ci "$@"; fi
echo "== jest: unit and integration (2 workers)"
npx jest --ci --maxWorkers=2 --testPathIgnorePatterns '/tests/(e2e|reliability)/'
echo "== jest: end to end and reliability (one at a time: they start hubs, servers and many kernels)"
npx jest --ci --runInBand --testPathPatterns '/tests/(e2e|reliability)/'

