"""``python -m spawngate.launcher``, run as a subprocess the way a kernel image runs it.

Most tests launch a small "probe" program as the kernel: it reports (as JSON on
stdout) what the kernel would see — its environment, argv, working directory,
pid and the connection file. One test starts a real ipykernel and talks to it
with jupyter_client.
"""

import json
import os
import queue
import re
import secrets
import socket
import stat
import subprocess
import sys
import textwrap
import time

import pytest

SHIM = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
# Debian's interpreter has ipykernel and jupyter_client; the kernel images' Python may differ.
PY = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
KERNEL_ID = "3f2a8d0e-1c4b-4e8a-9f6d-2b7c5e1a0d93"

PROBE = textwrap.dedent(
    """
    import json, os, stat, sys
    cf = sys.argv[1]
    print(json.dumps({
        "argv": sys.argv[1:],
        "pid": os.getpid(),
        "cwd": os.getcwd(),
        "has_info": "SPAWNGATE_CONNECTION_INFO" in os.environ,
        "marker": os.environ.get("PROBE_MARKER"),
        "connection_file": cf,
        "mode": stat.S_IMODE(os.stat(cf).st_mode),
        "dir_mode": stat.S_IMODE(os.stat(os.path.dirname(cf)).st_mode),
        "info": json.load(open(cf)),
    }))
    """
)
PROBE_ARGV = [PY, "-c", PROBE, "{connection_file}"]


def free_ports(n=5):
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def connection_info(**overrides):
    ports = free_ports()
    info = {
        "ip": "127.0.0.1",
        "transport": "tcp",
        "shell_port": ports[0],
        "iopub_port": ports[1],
        "stdin_port": ports[2],
        "control_port": ports[3],
        "hb_port": ports[4],
        "key": secrets.token_hex(32),
        "signature_scheme": "hmac-sha256",
        "kernel_name": "python3",
    }
    info.update(overrides)
    return info


def base_env(tmp_path, **extra):
    """A clean environment: nothing SPAWNGATE_* leaks in from the test runner."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env = {
        "TMPDIR": str(tmp_path / "tmp"),  # where the launcher's mkdtemp() lands
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": SHIM,
        "HOME": str(home),
        "IPYTHONDIR": str(home / ".ipython"),
        "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
        "LANG": "C.UTF-8",
        "PROBE_MARKER": "kept",
        "KERNEL_ID": KERNEL_ID,
    }
    env.update(extra)
    return env


def launch(env, args=(), cwd=None, timeout=60):
    """Run the launcher to completion; return (pid, returncode, stdout, stderr)."""
    proc = subprocess.Popen(
        [PY, "-m", "spawngate.launcher", *args],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = proc.communicate(timeout=timeout)
    return proc.pid, proc.returncode, out, err


def probe_report(out):
    return json.loads(out.strip().splitlines()[-1])


def write_source(tmp_path, info):
    path = tmp_path / "secret" / "connection.json"
    path.parent.mkdir()
    path.write_text(info if isinstance(info, str) else json.dumps(info))
    path.chmod(0o400)  # like a Secret mounted read-only
    return str(path)


# --------------------------------------------------------------------------- real kernel


def shell_reply(kc, msg_id, proc, timeout=60):
    """The shell reply to ``msg_id``, failing early if the kernel process exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"kernel exited with {proc.returncode}"
        try:
            msg = kc.get_shell_msg(timeout=0.5)
        except queue.Empty:
            continue
        if msg["parent_header"].get("msg_id") == msg_id:
            return msg
    raise AssertionError(f"no shell reply to {msg_id} within {timeout} s")


def test_real_ipykernel_from_mounted_file(tmp_path):
    jupyter_client = pytest.importorskip("jupyter_client")
    info = connection_info()
    source = write_source(tmp_path, info)
    env = base_env(
        tmp_path,
        SPAWNGATE_CONNECTION_SOURCE=source,
        SPAWNGATE_KERNEL_ARGV=json.dumps([PY, "-m", "ipykernel_launcher", "-f", "{connection_file}"]),
    )
    stderr_path = tmp_path / "kernel.stderr"
    with open(stderr_path, "w") as stderr:
        proc = subprocess.Popen(
            [PY, "-m", "spawngate.launcher"], env=env, cwd=str(tmp_path),
            stdout=subprocess.DEVNULL, stderr=stderr,
        )
    kc = jupyter_client.BlockingKernelClient()
    kc.load_connection_info(dict(info, ip="127.0.0.1"))
    kc.start_channels()
    try:
        # One request, queued by ZMQ until the kernel binds; no heartbeat-based readiness
        # check (jupyter_client's wait_for_ready gives up on a missed beat under load).
        reply = shell_reply(kc, kc.kernel_info(), proc)
        assert reply["msg_type"] == "kernel_info_reply"
        assert reply["content"]["status"] == "ok"
        assert reply["content"]["language_info"]["name"] == "python"

        msg_id = kc.execute("import os", silent=True, user_expressions={"pid": "os.getpid()"})
        reply = shell_reply(kc, msg_id, proc)
        assert reply["content"]["status"] == "ok", reply["content"]
        pid = int(reply["content"]["user_expressions"]["pid"]["data"]["text/plain"])
        assert pid == proc.pid  # exec'd in place: the launcher's process *is* the kernel

        log = stderr_path.read_text()
        [line] = [l for l in log.splitlines() if l.startswith("spawngate.launcher:")]
        assert KERNEL_ID in line and PY in line
        cf = re.search(r"connection file (\S+)", line).group(1)
        assert stat.S_IMODE(os.stat(cf).st_mode) == 0o600
        # jupyter_client may add the sticky bit to the directory when it rewrites the file
        assert stat.S_IMODE(os.stat(os.path.dirname(cf)).st_mode) & 0o777 == 0o700
        assert json.load(open(cf))["ip"] == "0.0.0.0"

        kc.shutdown()
        assert proc.wait(timeout=30) == 0
    finally:
        kc.stop_channels()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert info["key"] not in stderr_path.read_text()


# --------------------------------------------------------------------------- sources and environment


def test_env_json_source_is_removed_from_kernel_environment(tmp_path):
    info = connection_info()
    env = base_env(
        tmp_path,
        SPAWNGATE_CONNECTION_INFO=json.dumps(info),
        SPAWNGATE_KERNEL_ARGV=json.dumps(PROBE_ARGV),
    )
    pid, rc, out, err = launch(env, cwd=str(tmp_path))
    assert rc == 0, err
    report = probe_report(out)
    assert report["has_info"] is False
    assert report["marker"] == "kept"  # the rest of the environment is passed through
    assert report["pid"] == pid
    assert report["mode"] == 0o600
    assert report["dir_mode"] == 0o700
    assert report["info"]["ip"] == "0.0.0.0"
    assert report["info"] == dict(info, ip="0.0.0.0")
    assert report["argv"] == [report["connection_file"]]
    # a fresh private directory from tempfile.mkdtemp()
    assert os.path.dirname(os.path.dirname(report["connection_file"])) == str(tmp_path / "tmp")
    assert os.path.basename(report["connection_file"]) == f"kernel-{KERNEL_ID}.json"
    assert info["key"] not in err
    [line] = err.splitlines()
    assert KERNEL_ID in line and PY in line and report["connection_file"] in line


def test_file_source_wins_and_env_copy_still_removed(tmp_path):
    info = connection_info()
    other = connection_info()
    env = base_env(
        tmp_path,
        SPAWNGATE_CONNECTION_SOURCE=write_source(tmp_path, info),
        SPAWNGATE_CONNECTION_INFO=json.dumps(other),
        SPAWNGATE_KERNEL_ARGV=json.dumps(PROBE_ARGV),
    )
    _, rc, out, err = launch(env)
    assert rc == 0, err
    report = probe_report(out)
    assert report["info"]["key"] == info["key"]
    assert report["info"]["shell_port"] == info["shell_port"]
    assert report["has_info"] is False


def test_argv_after_double_dash_runtime_dir_bind_ip_and_resource_dir(tmp_path):
    info = connection_info()
    runtime = tmp_path / "run" / "kernels"
    resources = tmp_path / "spec"
    env = base_env(
        tmp_path,
        SPAWNGATE_CONNECTION_INFO=json.dumps(info),
        SPAWNGATE_RUNTIME_DIR=str(runtime),
        SPAWNGATE_BIND_IP="127.0.0.1",
        SPAWNGATE_RESOURCE_DIR=str(resources),
        KERNEL_ID="../../evil id",
    )
    args = ["--", *PROBE_ARGV, "{resource_dir}/logo.png", "{other}"]
    _, rc, out, err = launch(env, args)
    assert rc == 0, err
    report = probe_report(out)
    assert os.path.dirname(report["connection_file"]) == str(runtime)
    assert stat.S_IMODE(runtime.stat().st_mode) == 0o700
    assert report["argv"] == [report["connection_file"], f"{resources}/logo.png", "{other}"]
    assert report["info"]["ip"] == "127.0.0.1"
    assert report["mode"] == 0o600


def test_kernel_argv_env_wins_over_command_line(tmp_path):
    env = base_env(
        tmp_path,
        SPAWNGATE_CONNECTION_INFO=json.dumps(connection_info()),
        SPAWNGATE_KERNEL_ARGV=json.dumps(PROBE_ARGV),
    )
    _, rc, out, err = launch(env, ["--", "/nonexistent/never-run"])
    assert rc == 0, err
    assert probe_report(out)["has_info"] is False


def test_kernel_working_dir_honored(tmp_path):
    work = tmp_path / "notebooks"
    work.mkdir()
    start = tmp_path / "start"
    start.mkdir()
    env = base_env(
        tmp_path,
        SPAWNGATE_CONNECTION_INFO=json.dumps(connection_info()),
        SPAWNGATE_KERNEL_ARGV=json.dumps(PROBE_ARGV),
        KERNEL_WORKING_DIR=str(work),
    )
    _, rc, out, err = launch(env, cwd=str(start))
    assert rc == 0, err
    assert probe_report(out)["cwd"] == str(work)


def test_missing_kernel_working_dir_leaves_cwd_and_warns(tmp_path):
    start = tmp_path / "start"
    start.mkdir()
    env = base_env(
        tmp_path,
        SPAWNGATE_CONNECTION_INFO=json.dumps(connection_info()),
        SPAWNGATE_KERNEL_ARGV=json.dumps(PROBE_ARGV),
        KERNEL_WORKING_DIR=str(tmp_path / "absent"),
    )
    _, rc, out, err = launch(env, cwd=str(start))
    assert rc == 0, err
    assert probe_report(out)["cwd"] == str(start)
    assert "KERNEL_WORKING_DIR" in err and "warning" in err


# --------------------------------------------------------------------------- bad input


def _drop(field):
    def edit(info):
        del info[field]
        return info

    return edit


def _set(field, value):
    def edit(info):
        info[field] = value
        return info

    return edit


BAD_INFO = [
    ("port 0", _set("shell_port", 0), "shell_port"),
    ("port 70000", _set("iopub_port", 70000), "iopub_port"),
    ("port string", _set("stdin_port", "abc"), "stdin_port"),
    ("port numeric string", _set("control_port", "5555"), "control_port"),
    ("port bool", _set("hb_port", True), "hb_port"),
    ("port float", _set("hb_port", 5555.0), "hb_port"),
    ("port missing", _drop("control_port"), "control_port"),
    ("key missing", _drop("key"), "key"),
    ("key empty", _set("key", ""), "key"),
    ("key not a string", _set("key", 12345), "key"),
    ("wrong scheme", _set("signature_scheme", "hmac-md5"), "signature_scheme"),
    ("scheme missing", _drop("signature_scheme"), "signature_scheme"),
    ("wrong transport", _set("transport", "ipc"), "transport"),
    ("transport missing", _drop("transport"), "transport"),
    ("ip not a string", _set("ip", 127), "ip"),
]


def assert_refused(rc, out, err, *names, key=None):
    assert rc == 2, (rc, out, err)
    assert out == ""  # the kernel never ran
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("spawngate.launcher: error:")
    for name in names:
        assert name in lines[0], (name, lines[0])
    if key:
        assert key not in out and key not in err


@pytest.mark.parametrize("source", ["env", "file"])
@pytest.mark.parametrize("case,edit,field", BAD_INFO, ids=[c[0] for c in BAD_INFO])
def test_malformed_connection_info_exits_2_naming_field(tmp_path, source, case, edit, field):
    good = connection_info()
    key = good["key"]
    info = edit(dict(good))
    if source == "env":
        env = base_env(tmp_path, SPAWNGATE_CONNECTION_INFO=json.dumps(info))
    else:
        env = base_env(tmp_path, SPAWNGATE_CONNECTION_SOURCE=write_source(tmp_path, info))
    env["SPAWNGATE_KERNEL_ARGV"] = json.dumps(PROBE_ARGV)
    _, rc, out, err = launch(env)
    assert_refused(rc, out, err, f"'{field}'", key=key)


def test_no_source_exits_2(tmp_path):
    env = base_env(tmp_path, SPAWNGATE_KERNEL_ARGV=json.dumps(PROBE_ARGV))
    _, rc, out, err = launch(env)
    assert_refused(rc, out, err, "SPAWNGATE_CONNECTION_SOURCE", "SPAWNGATE_CONNECTION_INFO")


def test_unreadable_source_file_exits_2(tmp_path):
    env = base_env(
        tmp_path,
        SPAWNGATE_CONNECTION_SOURCE=str(tmp_path / "missing.json"),
        SPAWNGATE_KERNEL_ARGV=json.dumps(PROBE_ARGV),
    )
    _, rc, out, err = launch(env)
    assert_refused(rc, out, err, "SPAWNGATE_CONNECTION_SOURCE", "missing.json")


@pytest.mark.parametrize("source", ["env", "file"])
def test_bad_json_exits_2_without_echoing_it(tmp_path, source):
    info = connection_info()
    text = json.dumps(info)[:-1] + ',"x": }'  # broken after the key
    if source == "env":
        env = base_env(tmp_path, SPAWNGATE_CONNECTION_INFO=text)
        name = "SPAWNGATE_CONNECTION_INFO"
    else:
        env = base_env(tmp_path, SPAWNGATE_CONNECTION_SOURCE=write_source(tmp_path, text))
        name = "SPAWNGATE_CONNECTION_SOURCE"
    env["SPAWNGATE_KERNEL_ARGV"] = json.dumps(PROBE_ARGV)
    _, rc, out, err = launch(env)
    assert_refused(rc, out, err, name, "JSON", key=info["key"])


def test_json_not_an_object_exits_2(tmp_path):
    env = base_env(
        tmp_path, SPAWNGATE_CONNECTION_INFO="[1, 2]", SPAWNGATE_KERNEL_ARGV=json.dumps(PROBE_ARGV)
    )
    _, rc, out, err = launch(env)
    assert_refused(rc, out, err, "SPAWNGATE_CONNECTION_INFO", "object")


@pytest.mark.parametrize(
    "argv_env,args,names",
    [
        (None, [], ["SPAWNGATE_KERNEL_ARGV", "--"]),
        ("not json", [], ["SPAWNGATE_KERNEL_ARGV", "JSON"]),
        ('"python"', [], ["SPAWNGATE_KERNEL_ARGV", "array"]),
        ("[]", [], ["SPAWNGATE_KERNEL_ARGV", "non-empty"]),
        ('["python", 3]', [], ["SPAWNGATE_KERNEL_ARGV", "strings"]),
        (None, ["python"], ["'python'", "--"]),
        (None, ["--"], ["'--'", "non-empty"]),
        (json.dumps([PY, "{resource_dir}/x"]), [], ["{resource_dir}", "SPAWNGATE_RESOURCE_DIR"]),
    ],
    ids=["none", "bad-json", "not-array", "empty", "non-string", "no-dashes", "empty-after-dashes", "resource-dir-unset"],
)
def test_bad_kernel_argv_exits_2(tmp_path, argv_env, args, names):
    info = connection_info()
    runtime = tmp_path / "runtime"
    env = base_env(tmp_path, SPAWNGATE_CONNECTION_INFO=json.dumps(info), SPAWNGATE_RUNTIME_DIR=str(runtime))
    if argv_env is not None:
        env["SPAWNGATE_KERNEL_ARGV"] = argv_env
    _, rc, out, err = launch(env, args)
    assert_refused(rc, out, err, *names, key=info["key"])
    assert not runtime.exists()  # refused before writing anything


def test_bad_bind_ip_exits_2(tmp_path):
    env = base_env(
        tmp_path,
        SPAWNGATE_CONNECTION_INFO=json.dumps(connection_info()),
        SPAWNGATE_KERNEL_ARGV=json.dumps(PROBE_ARGV),
        SPAWNGATE_BIND_IP="all-interfaces",
    )
    _, rc, out, err = launch(env)
    assert_refused(rc, out, err, "SPAWNGATE_BIND_IP")


# --------------------------------------------------------------------------- exec failures


@pytest.mark.parametrize("via", ["env", "args"])
@pytest.mark.parametrize("exe", ["/nonexistent/bin/python", "no-such-python-spawngate"])
def test_missing_executable_exits_127(tmp_path, via, exe):
    info = connection_info()
    argv = [exe, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    env = base_env(tmp_path, SPAWNGATE_CONNECTION_INFO=json.dumps(info))
    args = []
    if via == "env":
        env["SPAWNGATE_KERNEL_ARGV"] = json.dumps(argv)
    else:
        args = ["--", *argv]
    _, rc, out, err = launch(env, args)
    assert rc == 127, err
    assert "not found" in err and exe in err
    assert info["key"] not in err and info["key"] not in out


def test_non_executable_file_exits_126(tmp_path):
    script = tmp_path / "kernel.sh"
    script.write_text("#!/bin/sh\necho ran\n")
    script.chmod(0o644)
    env = base_env(
        tmp_path,
        SPAWNGATE_CONNECTION_INFO=json.dumps(connection_info()),
        SPAWNGATE_KERNEL_ARGV=json.dumps([str(script)]),
    )
    _, rc, out, err = launch(env)
    assert rc == 126, err
    assert str(script) in err and out == ""


# --------------------------------------------------------------------------- standard library only

BLOCKER = textwrap.dedent(
    """
    import sys
    BLOCKED = ("jupyterhub", "tornado", "traitlets")

    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError("blocked for this test: " + name)
            return None

    sys.meta_path.insert(0, Block())
    for name in BLOCKED:
        try:
            __import__(name)
        except ImportError:
            pass
        else:
            raise SystemExit("blocker does not work for " + name)
    """
)


def test_import_without_jupyterhub_tornado_traitlets(tmp_path):
    code = BLOCKER + textwrap.dedent(
        """
        import spawngate.launcher
        assert callable(spawngate.launcher.main)
        loaded = [m for m in sys.modules if m.split(".")[0] in BLOCKED]
        assert not loaded, loaded
        print("ok")
        """
    )
    res = subprocess.run(
        [PY, "-c", code], env=base_env(tmp_path), capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"


def test_launch_runs_without_jupyterhub_tornado_traitlets(tmp_path):
    code = BLOCKER + "import runpy; runpy.run_module('spawngate.launcher', run_name='__main__', alter_sys=True)"
    env = base_env(
        tmp_path,
        SPAWNGATE_CONNECTION_INFO=json.dumps(connection_info()),
        SPAWNGATE_KERNEL_ARGV=json.dumps(PROBE_ARGV),
    )
    res = subprocess.run([PY, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert probe_report(res.stdout)["has_info"] is False
