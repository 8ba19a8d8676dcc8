"""The package installs with Debian's setuptools and JupyterHub finds it by name."""

import os
import subprocess
import sys
import textwrap

import pytest

SHIM = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def test_import_spawngate_does_not_need_jupyterhub():
    code = textwrap.dedent(
        """
        import sys
        sys.modules["jupyterhub"] = None  # any import of jupyterhub now fails
        import spawngate
        assert spawngate.__version__
        try:
            spawngate.RemoteSpawner
        except ImportError:
            pass
        else:
            raise SystemExit("RemoteSpawner should need jupyterhub")
        """
    )
    subprocess.run([sys.executable, "-c", code], cwd=SHIM, check=True)


def test_pip_install_and_entry_point(tmp_path):
    pytest.importorskip("setuptools")
    pytest.importorskip("pip")
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
            "--no-build-isolation", "--no-cache-dir", "--target", str(target), SHIM,
        ],
        check=True,
        capture_output=True,
    )
    code = textwrap.dedent(
        """
        from importlib.metadata import entry_points
        from jupyterhub.app import JupyterHub
        [ep] = [e for e in entry_points(group="jupyterhub.spawners") if e.name == "spawngate"]
        assert ep.value == "spawngate:RemoteSpawner", ep.value
        app = JupyterHub()
        app.spawner_class = "spawngate"
        print(app.spawner_class.__module__ + "." + app.spawner_class.__name__)
        print(__import__("spawngate").__file__)
        """
    )
    env = dict(os.environ, PYTHONPATH=str(target))
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=str(tmp_path), env=env, check=True, capture_output=True, text=True
    ).stdout.split()
    assert out[0] == "spawngate.spawner.RemoteSpawner"
    assert out[1].startswith(str(target))
