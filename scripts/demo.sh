#!/usr/bin/env bash
# `npm run demo`: spawngate on the embedded default (PGlite, in-process queue, local backend) and, when
# JupyterHub is installed, a demo hub wired to it at http://localhost:8000 (any user name, any password).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f dist/cli/main.js ] || npm run build --silent

export SPAWNGATE_DATA_DIR="${SPAWNGATE_DATA_DIR:-$PWD/.spawngate/demo}"
export SPAWNGATE_PORT="${SPAWNGATE_PORT:-8090}"
mkdir -p "$SPAWNGATE_DATA_DIR"
tokfile="$SPAWNGATE_DATA_DIR/hub-token"
[ -s "$tokfile" ] || node -e "process.stdout.write(require('crypto').randomBytes(24).toString('hex'))" > "$tokfile"
export SPAWNGATE_HUB_TOKEN="${SPAWNGATE_HUB_TOKEN:-$(cat "$tokfile")}"
[ "$(id -u)" = 0 ] && export SPAWNGATE_ALLOW_ROOT=1

HUB_PY=""
for py in /usr/bin/python3 python3; do
  if command -v "$py" >/dev/null && "$py" -c 'import jupyterhub' 2>/dev/null; then HUB_PY="$py"; break; fi
done
if [ -z "$HUB_PY" ]; then
  echo "JupyterHub is not installed: running spawngate alone on http://127.0.0.1:$SPAWNGATE_PORT"
  echo "  (Debian/Ubuntu: sudo apt-get install jupyterhub; or pip install jupyterhub, then run this again)"
  exec node bin/spawngate.js serve
fi

# A shared Python kernel so a notebook runs code at once; kernels of unregistered environments use
# the demo profile's resources instead of being refused (a real deployment registers them by SQL).
if [ -z "${SPAWNGATE_SHARED_KERNELS:-}" ] && "$HUB_PY" -c 'import ipykernel' 2>/dev/null; then
  mkdir -p "$SPAWNGATE_DATA_DIR/kernels/python3"
  printf '{"argv": ["%s", "-m", "ipykernel_launcher", "-f", "{connection_file}"], "display_name": "Python 3 (spawngate demo)", "language": "python"}\n' \
    "$(command -v "$HUB_PY")" > "$SPAWNGATE_DATA_DIR/kernels/python3/kernel.json"
  export SPAWNGATE_SHARED_KERNELS="$SPAWNGATE_DATA_DIR/kernels"
fi

# Debian's JupyterHub 3.0 starts jupyter_server, which has no web UI here; the classic notebook
# (python3-notebook, installed with jupyterhub) does — use it unless JupyterLab is installed.
if [ -z "${SPAWNGATE_CONFIG:-}" ] && ! "$HUB_PY" -c 'import jupyterlab' 2>/dev/null && "$HUB_PY" -c 'import notebook.notebookapp' 2>/dev/null; then
  export SPAWNGATE_CONFIG="$SPAWNGATE_DATA_DIR/demo.yaml"
  cat > "$SPAWNGATE_CONFIG" <<YAML
profiles:
  - slug: classic
    display_name: Classic notebook
    default: true
    env: { JUPYTERHUB_SINGLEUSER_APP: notebook.notebookapp.NotebookApp }
kernels:
  unregistered_environments: { profile: classic }
YAML
fi

node bin/spawngate.js serve &
SG_PID=$!
trap 'kill $SG_PID 2>/dev/null; wait $SG_PID 2>/dev/null' EXIT
for _ in $(seq 1 60); do curl -fs "http://127.0.0.1:$SPAWNGATE_PORT/healthz" >/dev/null 2>&1 && break; sleep 0.5; done

hubdir="$SPAWNGATE_DATA_DIR/hub"
mkdir -p "$hubdir"
cat > "$hubdir/jupyterhub_config.py" <<PY
c = get_config()  # noqa
c.JupyterHub.ip = '127.0.0.1'
c.JupyterHub.port = 8000
c.JupyterHub.db_url = 'sqlite:///$hubdir/jupyterhub.sqlite'
c.JupyterHub.cookie_secret_file = '$hubdir/cookie_secret'
c.ConfigurableHTTPProxy.pid_file = '$hubdir/proxy.pid'
c.JupyterHub.authenticator_class = 'dummy'
c.JupyterHub.spawner_class = 'spawngate.RemoteSpawner'
c.JupyterHub.allow_named_servers = True
c.RemoteSpawner.service_url = 'http://127.0.0.1:$SPAWNGATE_PORT'
PY
echo "Demo JupyterHub on http://localhost:8000 — sign in with any name and password."
cd "$hubdir"
PYTHONPATH="$OLDPWD/python-shim${PYTHONPATH:+:$PYTHONPATH}" NODE_PATH="${NODE_PATH:-/usr/share/nodejs}" \
  "$HUB_PY" -m jupyterhub -f "$hubdir/jupyterhub_config.py"
