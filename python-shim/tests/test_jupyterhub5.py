"""What JupyterHub 4.x/5.x expects of a spawner, checked without installing it.

JupyterHub 5 cannot be installed here; real JupyterHub 3.0 is the end-to-end
peer. JupyterHub 5.3 added the ``Spawner.apply_user_options`` trait: before
``start()`` the hub calls the configured hook as ``hook(spawner, user_options)``
(passing an ``HTTPError`` through to the user, turning other exceptions into
"400 Invalid user options"), and logs "Received unhandled user_options for
<server>: <keys>" when no hook is set and ``user_options`` is not empty. The
base class below declares that trait and dispatches that way, so the shim's
module is loaded against it here exactly as it is loaded under a 5.x hub.
"""

import importlib.util
import os

import jupyterhub.spawner
import pytest
from conftest import FakeUser
from tornado import web
from traitlets import Callable, Dict, Union

from spawngate.errors import SpawnRefused

SPAWNER_PY = os.path.join(os.path.dirname(__file__), "..", "spawngate", "spawner.py")


class Hub5Spawner(jupyterhub.spawner.Spawner):
    """JupyterHub 3.0's Spawner plus the 5.3+ ``apply_user_options`` trait and its caller."""

    apply_user_options = Union([Callable(), Dict()], default_value=None, allow_none=True).tag(config=True)

    # still abstract (the hub's base class refuses subclasses that do not name these)
    async def start(self):
        raise NotImplementedError

    async def stop(self, now=False):
        raise NotImplementedError

    async def poll(self):
        raise NotImplementedError

    async def run_apply_user_options_as_hub5(self, user_options):
        hook = self.apply_user_options
        try:
            if callable(hook):
                hook(self, user_options)
            elif user_options:
                self.log.warning(
                    "Received unhandled user_options for %s: %s", self._log_name, ", ".join(user_options)
                )
        except web.HTTPError:
            raise
        except Exception as e:
            raise web.HTTPError(400, "Invalid user options") from e


def load_shim_against(base, monkeypatch):
    """spawngate/spawner.py executed with ``jupyterhub.spawner.Spawner`` being ``base``."""
    monkeypatch.setattr(jupyterhub.spawner, "Spawner", base)
    spec = importlib.util.spec_from_file_location("spawngate._spawner_under_hub5", SPAWNER_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.RemoteSpawner


@pytest.fixture
def hub5_spawner(monkeypatch):
    cls = load_shim_against(Hub5Spawner, monkeypatch)
    return cls(user=FakeUser("alice"), service_url="http://unused", service_token="t")


async def test_profile_option_is_handled_without_the_unhandled_warning(hub5_spawner, log_records):
    await hub5_spawner.run_apply_user_options_as_hub5({"profile": "large"})
    assert not [r for r in log_records if "unhandled user_options" in r.getMessage()]
    # the hook changes nothing on the spawner: spawngate applies the options at start
    assert hub5_spawner.user_options == {}


async def test_the_harness_does_warn_for_a_spawner_without_the_hook(monkeypatch, log_records):
    # the check above can fail: the same base warns when the shim declares no hook
    cls = load_shim_against(Hub5Spawner, monkeypatch)
    spawner = cls(user=FakeUser("alice"), service_url="http://unused", service_token="t", apply_user_options=None)
    await spawner.run_apply_user_options_as_hub5({"profile": "large"})
    assert [r for r in log_records if "Received unhandled user_options for alice: profile" in r.getMessage()]


async def test_unsendable_options_are_refused_with_a_message_before_start(hub5_spawner):
    with pytest.raises(SpawnRefused) as info:
        await hub5_spawner.run_apply_user_options_as_hub5({"profile": object()})
    # an HTTPError: 5.x shows this message instead of "Invalid user options"
    assert info.value.status_code == 400
    assert str(info.value).startswith("user_options cannot be sent to spawngate")


def test_an_admins_hook_wins(monkeypatch):
    cls = load_shim_against(Hub5Spawner, monkeypatch)

    def mine(spawner, user_options):
        pass

    spawner = cls(user=FakeUser("alice"), service_url="http://unused", service_token="t", apply_user_options=mine)
    assert spawner.apply_user_options is mine


def test_jupyterhub_3_has_no_such_trait_and_the_shim_adds_none():
    from spawngate import RemoteSpawner

    assert "apply_user_options" not in jupyterhub.spawner.Spawner.class_trait_names()
    assert "apply_user_options" not in RemoteSpawner.class_trait_names()


def test_errors_keep_their_message_after_the_hub_labels_them():
    # User.spawn (3.0 to 5.x) sets reason = "error" on what start() raised; the hub's
    # error page then replaces the message with reasons[reason] unless reason is empty
    error = SpawnRefused("user 'alice' already has 2 servers (limit 2, servers.max_servers_per_user)", status=429)
    error.reason = "error"
    assert not getattr(error, "reason", "")
    assert error.hub_reason == "error"
    assert error.log_message % error.args == str(error)
    assert error.status_code == 429
