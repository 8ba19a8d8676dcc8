"""Kernel launcher: the entrypoint of spawngate's kernel containers and pods.

``python -m spawngate.launcher`` runs inside a kernel container (docker backend)
or pod (kubernetes backend). It owns exactly one job: turn the connection info
spawngate provides into a Jupyter connection file, then ``exec`` the
kernelspec's ``argv`` (the environment's own Python with ipykernel) in its
place. It uses the standard library only (Python >= 3.8), so it runs in any
kernel image; it never imports JupyterHub, tornado or traitlets.

Contract (environment variables read by the launcher)
------------------------------------------------------

``SPAWNGATE_CONNECTION_SOURCE``
    Path of a file holding the connection info as JSON, e.g. a Kubernetes
    Secret mounted read-only at ``/var/run/spawngate/connection.json`` (the
    key then never appears in any environment). Preferred when set; if it is
    set but unreadable, that is an error (no fallback).
``SPAWNGATE_CONNECTION_INFO``
    The connection info itself as JSON (docker, when nothing can be mounted).
    Always removed from the environment the kernel is executed with.
``SPAWNGATE_KERNEL_ARGV``
    JSON array of strings: the kernelspec's ``argv``. If unset, the launcher's
    command-line arguments after ``--`` are used instead::

        python -m spawngate.launcher -- python -m ipykernel_launcher -f {connection_file}

    ``{connection_file}`` becomes the path of the file the launcher writes;
    ``{resource_dir}`` becomes ``SPAWNGATE_RESOURCE_DIR`` (an error if unset).
    Other ``{...}`` text is left as it is (as jupyter_client does).
``SPAWNGATE_RESOURCE_DIR``
    Optional: the kernelspec's resource directory, for ``{resource_dir}``.
``SPAWNGATE_RUNTIME_DIR``
    Optional: directory for the connection file (created with mode 0700 if
    missing). Default: a fresh private ``tempfile.mkdtemp()`` directory.
``SPAWNGATE_BIND_IP``
    Optional: the ``ip`` written into the connection file, i.e. where the
    kernel binds. Default ``0.0.0.0`` (all interfaces of the pod/container;
    spawngate connects to the pod or container IP).
``KERNEL_WORKING_DIR``
    Optional (Enterprise Gateway convention): the kernel's working directory,
    used if it exists; otherwise the working directory is left unchanged.
``KERNEL_ID``
    Optional: the kernel id, used in the log line and the file name.

Connection info must be a JSON object with integer ``shell_port``,
``iopub_port``, ``stdin_port``, ``control_port`` and ``hb_port`` in 1..65535, a
non-empty string ``key``, ``signature_scheme`` ``"hmac-sha256"`` and
``transport`` ``"tcp"``; ``ip`` and ``kernel_name`` are optional strings. Other
fields are passed through.

Exit status: 2 for bad input (one line on stderr naming the variable or field,
never the key), 127 if the kernel executable is not found, 126 if it cannot be
executed. On success the process *becomes* the kernel (same pid), logging one
line to stderr first: kernel id, executable and connection file path.
"""

import ipaddress
import json
import os
import re
import sys
import tempfile

CONNECTION_SOURCE = "SPAWNGATE_CONNECTION_SOURCE"
CONNECTION_INFO = "SPAWNGATE_CONNECTION_INFO"
KERNEL_ARGV = "SPAWNGATE_KERNEL_ARGV"
RESOURCE_DIR = "SPAWNGATE_RESOURCE_DIR"
RUNTIME_DIR = "SPAWNGATE_RUNTIME_DIR"
BIND_IP = "SPAWNGATE_BIND_IP"
WORKING_DIR = "KERNEL_WORKING_DIR"
KERNEL_ID = "KERNEL_ID"

PORT_FIELDS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
DEFAULT_BIND_IP = "0.0.0.0"
MAX_CONNECTION_INFO_BYTES = 64 * 1024

EXIT_USAGE = 2
EXIT_NOT_EXECUTABLE = 126
EXIT_NOT_FOUND = 127

PROG = "spawngate.launcher"
USAGE = f"usage: python -m {PROG} [-- KERNEL_ARGV...]   (see `python -m pydoc {PROG}`)"


class LauncherError(Exception):
    """A problem that stops the launch: ``str(self)`` is the one-line message
    (never containing the key) and ``code`` the exit status."""

    def __init__(self, message, code=EXIT_USAGE):
        super().__init__(message)
        self.code = code


def _describe(value):
    """A short, secret-free description of a bad value for error messages."""
    if isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    if value is None:
        return "null"
    return {str: "a string", float: "a number", list: "an array", dict: "an object"}.get(
        type(value), type(value).__name__
    )


def load_connection_info(environ):
    """Read the connection info from ``SPAWNGATE_CONNECTION_SOURCE`` (a file)
    or else ``SPAWNGATE_CONNECTION_INFO`` (JSON); return ``(raw_dict, origin)``
    where origin names the variable it came from. Raises LauncherError."""
    path = environ.get(CONNECTION_SOURCE)
    if path:
        origin = f"{CONNECTION_SOURCE} ({path})"
        try:
            with open(path, "rb") as f:
                text = f.read(MAX_CONNECTION_INFO_BYTES + 1)
        except OSError as e:
            raise LauncherError(f"{CONNECTION_SOURCE}: cannot read {path}: {e.strerror or e}") from None
    elif environ.get(CONNECTION_INFO):
        origin = CONNECTION_INFO
        text = environ[CONNECTION_INFO].encode("utf-8", "surrogateescape")
    else:
        raise LauncherError(
            f"no connection info: set {CONNECTION_SOURCE} (path of a connection file) "
            f"or {CONNECTION_INFO} (JSON)"
        )
    if len(text) > MAX_CONNECTION_INFO_BYTES:
        raise LauncherError(f"{origin}: connection info larger than {MAX_CONNECTION_INFO_BYTES} bytes")
    try:
        info = json.loads(text.decode("utf-8"))
    except UnicodeDecodeError:
        raise LauncherError(f"{origin}: connection info is not UTF-8") from None
    except json.JSONDecodeError as e:
        # JSONDecodeError's message holds only a position, never the document.
        where = f"{e.msg} at line {e.lineno} column {e.colno}"
        raise LauncherError(f"{origin}: connection info is not valid JSON ({where})") from None
    except RecursionError:
        raise LauncherError(f"{origin}: connection info is nested too deeply") from None
    if not isinstance(info, dict):
        raise LauncherError(f"{origin}: connection info must be a JSON object, got {_describe(info)}")
    return info, origin


def validate_connection_info(info, origin="connection info"):
    """Check every field the kernel needs; return the dict unchanged or raise
    LauncherError naming the first bad field (the key's value is never shown)."""
    for field in PORT_FIELDS:
        if field not in info:
            raise LauncherError(f"{origin}: field '{field}' is missing")
        port = info[field]
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise LauncherError(
                f"{origin}: field '{field}' must be an integer 1..65535, got {_describe(port)}"
            )
    if "key" not in info:
        raise LauncherError(f"{origin}: field 'key' is missing")
    if not isinstance(info["key"], str) or not info["key"]:
        raise LauncherError(f"{origin}: field 'key' must be a non-empty string")
    for field, expected in (("signature_scheme", "hmac-sha256"), ("transport", "tcp")):
        if field not in info:
            raise LauncherError(f"{origin}: field '{field}' is missing (expected '{expected}')")
        if info[field] != expected:
            value = info[field]
            shown = isinstance(value, str) and len(value) <= 40 and value != info["key"]
            got = json.dumps(value) if shown else _describe(value)
            raise LauncherError(f"{origin}: field '{field}' must be '{expected}', got {got}")
    for field in ("ip", "kernel_name"):
        if field in info and not isinstance(info[field], str):
            raise LauncherError(f"{origin}: field '{field}' must be a string, got {_describe(info[field])}")
    return info


def kernel_argv(environ, args):
    """The kernel's argv, before substitution: ``SPAWNGATE_KERNEL_ARGV`` (JSON
    array of strings) or else the command-line ``args`` after ``--``."""
    raw = environ.get(KERNEL_ARGV)
    if raw is not None:
        try:
            argv = json.loads(raw)
        except ValueError as e:
            raise LauncherError(f"{KERNEL_ARGV} is not valid JSON ({getattr(e, 'msg', e)})") from None
        where = KERNEL_ARGV
    else:
        if "--" not in args:
            if args:
                raise LauncherError(f"unexpected argument {args[0]!r}; put the kernel argv after '--' ({USAGE})")
            raise LauncherError(f"no kernel argv: set {KERNEL_ARGV} (JSON array) or pass it after '--'")
        extra = args[: args.index("--")]
        if extra:
            raise LauncherError(f"unexpected argument {extra[0]!r} before '--' ({USAGE})")
        argv = args[args.index("--") + 1 :]
        where = "command line after '--'"
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        raise LauncherError(f"{where}: kernel argv must be a non-empty array of strings")
    if not argv[0]:
        raise LauncherError(f"{where}: kernel argv[0] (the executable) is empty")
    return argv


_PLACEHOLDER = re.compile(r"\{([A-Za-z0-9_]+)\}")


def substitute(argv, connection_file, environ):
    """Replace ``{connection_file}`` and ``{resource_dir}`` in each argument,
    leaving any other ``{name}`` as it is (jupyter_client's rule)."""
    values = {"connection_file": connection_file}
    if environ.get(RESOURCE_DIR):
        values["resource_dir"] = environ[RESOURCE_DIR]

    def one(match):
        name = match.group(1)
        if name in values:
            return values[name]
        if name == "resource_dir":
            raise LauncherError(f"kernel argv uses {{resource_dir}} but {RESOURCE_DIR} is not set")
        return match.group(0)

    return [_PLACEHOLDER.sub(one, arg) for arg in argv]


def bind_ip(environ):
    """The ip the kernel binds: ``SPAWNGATE_BIND_IP`` (validated) or 0.0.0.0."""
    ip = environ.get(BIND_IP)
    if not ip:
        return DEFAULT_BIND_IP
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        raise LauncherError(f"{BIND_IP} must be an IP address, got {ip!r}") from None
    return ip


def write_connection_file(info, environ):
    """Write ``info`` (with ``ip`` set to the bind address) as a mode-0600 JSON
    file in ``SPAWNGATE_RUNTIME_DIR`` or a new private temp dir; return its path.
    The file is written beside its final name and renamed into place."""
    data = dict(info, ip=bind_ip(environ))
    directory = environ.get(RUNTIME_DIR)
    try:
        if directory:
            os.makedirs(directory, mode=0o700, exist_ok=True)
        else:
            directory = tempfile.mkdtemp(prefix="spawngate-kernel-")
        kernel_id = re.sub(r"[^A-Za-z0-9_.-]", "_", environ.get(KERNEL_ID, ""))[:100].lstrip(".")
        path = os.path.join(os.path.abspath(directory), f"kernel-{kernel_id}.json" if kernel_id else "kernel.json")
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".connection-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                os.fchmod(f.fileno(), 0o600)
                json.dump(data, f, indent=2)
                f.write("\n")
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
    except OSError as e:
        where = f"{RUNTIME_DIR} ({directory})" if environ.get(RUNTIME_DIR) else "temp dir"
        raise LauncherError(f"cannot write the connection file in {where}: {e.strerror or e}") from None
    return path


def change_working_dir(environ):
    """``chdir`` to ``KERNEL_WORKING_DIR`` when it names an existing directory;
    warn on stderr (and stay put) when it is set but unusable."""
    wd = environ.get(WORKING_DIR)
    if not wd:
        return
    try:
        os.chdir(wd)
    except OSError as e:
        _log(f"warning: {WORKING_DIR}={wd!r} not used ({e.strerror or e}); staying in {os.getcwd()}")


def _log(message):
    sys.stderr.write(f"{PROG}: {message}\n")
    sys.stderr.flush()


def prepare(args, environ):
    """Everything before exec: returns ``(argv, connection_file, kernel_name)``.
    Raises LauncherError; performs the chdir and writes the connection file.
    ``environ`` is only read."""
    raw, origin = load_connection_info(environ)
    info = validate_connection_info(raw, origin)
    argv = kernel_argv(environ, args)
    substitute(argv, "", environ)  # placeholder errors surface before any side effect
    bind_ip(environ)
    path = write_connection_file(info, environ)  # before chdir: a relative runtime dir means the launch dir
    change_working_dir(environ)
    return substitute(argv, path, environ), path, info.get("kernel_name")


def main(args=None, environ=None):
    """Run the launcher: on success this never returns (the process becomes the
    kernel); otherwise return the exit status after one line on stderr."""
    args = sys.argv[1:] if args is None else list(args)
    environ = os.environ if environ is None else environ
    if args[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    try:
        argv, path, kernel_name = prepare(args, environ)
    except LauncherError as e:
        _log(f"error: {e}")
        return e.code
    finally:
        # The key leaves the environment now; the kernel is exec'd with what remains,
        # so neither it nor its children ever see SPAWNGATE_CONNECTION_INFO.
        environ.pop(CONNECTION_INFO, None)
    spec = f" ({kernel_name})" if kernel_name else ""
    kernel_id = environ.get(KERNEL_ID) or "(no KERNEL_ID)"
    kernel_id = kernel_id if kernel_id.isprintable() else repr(kernel_id)
    _log(f"starting kernel {kernel_id}{spec}: executable {argv[0]}, connection file {path}")
    try:
        os.execvpe(argv[0], argv, environ)
    except FileNotFoundError:
        _log(f"error: kernel executable not found: {argv[0]} (PATH={environ.get('PATH', '')})")
        return EXIT_NOT_FOUND
    except PermissionError:
        _log(f"error: kernel executable not executable (permission denied): {argv[0]}")
        return EXIT_NOT_EXECUTABLE
    except OSError as e:
        _log(f"error: cannot execute {argv[0]}: {e.strerror or e}")
        return EXIT_NOT_EXECUTABLE


if __name__ == "__main__":
    sys.exit(main())
