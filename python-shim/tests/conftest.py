"""Test harness: runs ``async def`` tests without pytest-asyncio, and builds spawners.

Each async test runs in a fresh event loop (``asyncio.run``) with a 30 s
limit. Fixture values that have ``_astart``/``_astop`` (the fake spawngate)
are started inside that loop before the test and stopped after it.
"""

import asyncio
import inspect
import logging
import os
import sys
from types import SimpleNamespace

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.dirname(__file__))

from fake_spawngate import TOKEN, FakeSpawngate  # noqa: E402

from spawngate import RemoteSpawner  # noqa: E402

TEST_TIMEOUT = 30


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    names = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in names}

    async def run():
        started = []
        try:
            for value in kwargs.values():
                if hasattr(value, "_astart"):
                    await value._astart()
                    started.append(value)
            await asyncio.wait_for(pyfuncitem.obj(**kwargs), TEST_TIMEOUT)
        finally:
            for value in reversed(started):
                await value._astop()

    asyncio.run(run())
    return True


@pytest.fixture
def fake():
    return FakeSpawngate()


class FakeUser:
    def __init__(self, name):
        self.name = name
        self.escaped_name = name
        self.url = f"/user/{name}/"


def make_spawner(service_url, user="alice", server_name="", **traits):
    """A RemoteSpawner wired like JupyterHub wires one, without a database."""
    hub = SimpleNamespace(
        public_host="",
        api_url="http://127.0.0.1:8081/hub/api",
        base_url="/hub/",
    )
    orm_spawner = SimpleNamespace(name=server_name, server=None, last_activity=None)
    traits.setdefault("service_token", TOKEN)
    traits.setdefault("start_timeout", 10)
    return RemoteSpawner(
        user=FakeUser(user),
        hub=hub,
        orm_spawner=orm_spawner,
        service_url=service_url,
        api_token="jupyterhub-api-token-for-alice",
        **traits,
    )


@pytest.fixture
def spawner_for():
    return make_spawner


@pytest.fixture
def log_records():
    """Every log record emitted during the test, from any logger."""
    records = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Collect(level=logging.DEBUG)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield records
    root.removeHandler(handler)
    root.setLevel(old_level)
