"""poll() and stop(): state mapping, outage policy, idempotency."""

import logging

import pytest
from fake_spawngate import TOKEN, unused_port

from spawngate.errors import ServiceUnreachable, SpawngateError


@pytest.mark.parametrize(
    "state, exit_code, expected",
    [
        ("pending", None, None),
        ("running", None, None),
        ("stopping", None, None),
        ("stopped", None, 0),
        ("stopped", 3, 3),
        ("failed", None, 1),
        ("failed", 137, 137),
    ],
)
async def test_poll_maps_states(fake, spawner_for, state, exit_code, expected):
    fake.add_server("alice", state=state, exit_code=exit_code, url="http://10.0.0.5:8888")
    assert await spawner_for(fake.base_url).poll() == expected
    [get] = fake.of("GET")
    assert get.path == "/api/users/alice/server"
    assert get.query == {}
    assert get.headers["Authorization"] == f"token {TOKEN}"


async def test_poll_unknown_server_is_stopped(fake, spawner_for):
    assert await spawner_for(fake.base_url).poll() == 0


async def test_poll_of_named_server_uses_escaped_name(fake, spawner_for):
    fake.add_server("a@b.org", "my gpu/1", state="running")
    spawner = spawner_for(fake.base_url, user="a@b.org", server_name="my gpu/1")
    assert await spawner.poll() is None
    [get] = fake.of("GET")
    assert get.path == "/api/users/a%40b.org/servers/my%20gpu%2F1"


def _warnings(records):
    return [r.getMessage() for r in records if r.levelno == logging.WARNING]


async def test_poll_during_5xx_outage_assumes_running(fake, spawner_for, log_records):
    fake.add_server("alice", state="running")
    fake.outage = True
    assert await spawner_for(fake.base_url).poll() is None
    assert any("assuming it is still running" in m for m in _warnings(log_records))


async def test_poll_when_unreachable_assumes_running(spawner_for, log_records):
    url = f"http://127.0.0.1:{unused_port()}"
    assert await spawner_for(url, request_timeout=2).poll() is None
    assert any(url in m for m in _warnings(log_records))


async def test_poll_with_rejected_token_never_declares_server_dead(fake, spawner_for):
    fake.add_server("alice", state="running")
    assert await spawner_for(fake.base_url, service_token="rotated").poll() is None


async def test_poll_outage_policy_assume_stopped(spawner_for):
    url = f"http://127.0.0.1:{unused_port()}"
    spawner = spawner_for(url, poll_outage_policy="assume-stopped")
    assert await spawner.poll() == 1
    await spawner.stop()  # treated as already stopped, no error


async def test_stop_waits_for_stopped_and_is_idempotent(fake, spawner_for):
    fake.add_server("alice", state="running")
    spawner = spawner_for(fake.base_url)
    await spawner.stop()
    assert fake.servers[("alice", "")].model["state"] == "stopped"
    [delete] = fake.of("DELETE")
    assert delete.path == "/api/users/alice/server"
    assert delete.query["wait"] == "true"
    assert 1 <= int(delete.query["timeout"]) <= 60
    assert delete.headers["Authorization"] == f"token {TOKEN}"

    await spawner.stop()  # already stopped: 200, fine
    await spawner.stop(now=True)
    assert len(fake.of("DELETE")) == 3
    assert await spawner.poll() == 0


async def test_stop_of_unknown_server_is_fine(fake, spawner_for):
    await spawner_for(fake.base_url).stop()
    [delete] = fake.of("DELETE")
    assert delete.path == "/api/users/alice/server"


async def test_stop_keeps_asking_while_still_stopping(fake, spawner_for):
    fake.add_server("alice", state="running")
    # spawngate answers a DELETE while the server is still stopping
    fake.canned.append(("DELETE", 200, {"state": "stopping", "generation": 1}))
    await spawner_for(fake.base_url).stop()
    assert len(fake.of("DELETE")) == 2
    assert fake.servers[("alice", "")].model["state"] == "stopped"


async def test_stop_refused_raises_with_message(fake, spawner_for):
    fake.add_server("alice", state="running")
    with pytest.raises(SpawngateError) as info:
        await spawner_for(fake.base_url, service_token="wrong").stop()
    assert "invalid token" in str(info.value)


async def test_stop_when_unreachable_raises_naming_url(spawner_for):
    url = f"http://127.0.0.1:{unused_port()}"
    with pytest.raises(ServiceUnreachable) as info:
        await spawner_for(url, stop_timeout=1).stop()
    assert url in str(info.value)


async def test_stop_of_named_server(fake, spawner_for):
    fake.add_server("alice", "gpu", state="running")
    fake.add_server("alice", "", state="running")
    await spawner_for(fake.base_url, server_name="gpu").stop()
    assert fake.servers[("alice", "gpu")].model["state"] == "stopped"
    assert fake.servers[("alice", "")].model["state"] == "running"


def test_paths_escape_every_reserved_character():
    from spawngate._client import profiles_path, server_path

    assert server_path("a/b", "") == "/api/users/a%2Fb/server"
    assert server_path("a b", "c/d?e#f") == "/api/users/a%20b/servers/c%2Fd%3Fe%23f"
    assert profiles_path("x/y") == "/api/users/x%2Fy/profiles"
