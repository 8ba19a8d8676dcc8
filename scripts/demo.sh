#!/usr/bin/env bash
# `npm run demo`: spawngate on the embedded default (embedded Postgres in the data directory, in-process
# queue, local backend with one shared identity) and, when JupyterHub is installed, a demo hub wired to it
# at http://localhost:8000 (any user name, any password; the first user, `admin` by default, is hub admin).
# Each user's notebooks live in <data dir>/homes/<user>, never in the checkout.
# SPAWNGATE_DEMO_NO_HUB=1 runs spawngate alone even when JupyterHub is installed.
set -euo pipefail
umask 077 # tokens, homes and the database are for this user alone
cd "$(dirname "$0")/.."
[ -f dist/cli/main.js ] || npm run build --silent

export SPAWNGATE_DATA_DIR="${SPAWNGATE_DATA_DIR:-$PWD/.spawngate/demo}"
export SPAWNGATE_PORT="${SPAWNGATE_PORT:-8090}"
mkdir -p "$SPAWNGATE_DATA_DIR"
tokfile="$SPAWNGATE_DATA_DIR/hub-token"
[ -s "$tokfile" ] || node -e "process.stdout.write(require('crypto').randomBytes(24).toString('hex'))" > "$tokfile"
export SPAWNGATE_HUB_TOKEN="${SPAWNGATE_HUB_TOKEN:-$(cat "$tokfile")}"
admtokfile="$SPAWNGATE_DATA_DIR/admin-token"
[ -s "$admtokfile" ] || node -e "process.stdout.write(require('crypto').randomBytes(24).toString('hex'))" > "$admtokfile"
export SPAWNGATE_ADMIN_TOKEN="${SPAWNGATE_ADMIN_TOKEN:-$(cat "$admtokfile")}"
# A demo machine: every user's workloads run as this user, each in its own home under the data directory.
export SPAWNGATE_LOCAL_SHARED_IDENTITY=1
export SPAWNGATE_HOME_ROOT="${SPAWNGATE_HOME_ROOT:-$SPAWNGATE_DATA_DIR/homes}"
mkdir -p "$SPAWNGATE_HOME_ROOT"
DEMO_ADMIN="${SPAWNGATE_DEMO_ADMIN:-admin}"
[ "$(id -u)" = 0 ] && export SPAWNGATE_ALLOW_ROOT=1
SG_URL="http://127.0.0.1:$SPAWNGATE_PORT"
SG="node $PWD/bin/spawngate.js"

# What to tell the person who ran the demo: every line after "$ " is a command that works as printed.
banner() {
  local hub=""
  [ -n "$1" ] && hub="  hub:         $1   (sign in as $DEMO_ADMIN, any password, for the hub admin page)"
  cat <<TXT

spawngate demo
  spawngate:   $SG_URL   (API docs $SG_URL/api/docs/)
$hub
  data:        $SPAWNGATE_DATA_DIR (embedded database, homes/<user> notebooks)
  hub token:   $tokfile
  admin token: $admtokfile
Administer it from another terminal:
  \$ SPAWNGATE_DATA_DIR=$SPAWNGATE_DATA_DIR $SG sql -c 'SELECT username, active FROM users'
  \$ SPAWNGATE_DATA_DIR=$SPAWNGATE_DATA_DIR $SG admin experiments list
  \$ curl -s -H "Authorization: Bearer \$(cat $admtokfile)" $SG_URL/api/admin/experiments
TXT
}

HUB_PY=""
for py in /usr/bin/python3 python3; do
  if command -v "$py" >/dev/null && "$py" -c 'import jupyterhub' 2>/dev/null; then HUB_PY="$py"; break; fi
done
if [ -z "$HUB_PY" ] || [ -n "${SPAWNGATE_DEMO_NO_HUB:-}" ]; then
  [ -z "$HUB_PY" ] && echo "JupyterHub is not installed: running spawngate alone (Debian/Ubuntu: sudo apt-get install jupyterhub; or pip install jupyterhub, then run this again)"
  node bin/spawngate.js serve &
  SG_PID=$!
  trap 'kill $SG_PID 2>/dev/null; wait $SG_PID 2>/dev/null' EXIT
  for _ in $(seq 1 60); do curl -fs "$SG_URL/healthz" >/dev/null 2>&1 && break; sleep 0.5; done
  banner ""
  wait $SG_PID
  exit
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
for _ in $(seq 1 60); do curl -fs "$SG_URL/healthz" >/dev/null 2>&1 && break; sleep 0.5; done

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
c.RemoteSpawner.service_url = '$SG_URL'
c.Authenticator.admin_users = {'$DEMO_ADMIN'}
def _make_home(spawner):
    # Each user's notebook directory, under the demo's data directory (spawngate uses it as HOME).
    import os
    os.makedirs(os.path.join('$SPAWNGATE_HOME_ROOT', spawner.user.name), mode=0o700, exist_ok=True)
c.Spawner.pre_spawn_hook = _make_home
PY
banner "http://localhost:8000"
cd "$hubdir"
PYTHONPATH="$OLDPWD/python-shim${PYTHONPATH:+:$PYTHONPATH}" NODE_PATH="${NODE_PATH:-/usr/share/nodejs}" \
  "$HUB_PY" -m jupyterhub -f "$hubdir/jupyterhub_config.py"
