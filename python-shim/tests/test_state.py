"""get_state()/load_state()/clear_state(): re-attaching after a hub restart."""

import json
from types import SimpleNamespace


async def test_state_round_trip_lets_a_fresh_spawner_poll_and_stop(fake, spawner_for):
    first = spawner_for(fake.base_url, server_name="gpu")
    url = await first.start()
    state = first.get_state()
    # the hub stores state as JSON
    state = json.loads(json.dumps(state))
    assert state["spawngate"] == {
        "user": "alice",
        "name": "gpu",
        "generation": fake.servers[("alice", "gpu")].model["generation"],
        "url": url,
    }

    # a restarted hub: a new spawner object, state loaded from the database
    fresh = spawner_for(fake.base_url, server_name="gpu")
    fresh.load_state(state)
    assert fresh.get_state() == state
    fake.requests.clear()
    assert await fresh.poll() is None
    assert await fresh.get_url() == url
    await fresh.stop()
    assert [(r.method, r.path) for r in fake.requests] == [
        ("GET", "/api/users/alice/servers/gpu"),
        ("DELETE", "/api/users/alice/servers/gpu"),
    ]
    assert await fresh.poll() == 0

    fresh.clear_state()
    assert "spawngate" not in fresh.get_state()
    assert fresh.api_token == ""  # base class state is cleared too


async def test_loaded_names_win_over_current_hub_names(fake, spawner_for):
    fake.add_server("old-name", "x y", state="running", url="http://10.0.0.9:9000")
    spawner = spawner_for(fake.base_url, user="new-name")
    spawner.load_state({"spawngate": {"user": "old-name", "name": "x y", "generation": 1, "url": None}})
    assert await spawner.poll() is None
    assert fake.of("GET")[0].path == "/api/users/old-name/servers/x%20y"
    # poll refreshed the URL from spawngate
    assert await spawner.get_url() == "http://10.0.0.9:9000"


async def test_get_url_keeps_the_hub_path_and_follows_spawngate(fake, spawner_for):
    fake.add_server("alice", state="running", url="http://10.0.0.7:8888")
    spawner = spawner_for(fake.base_url)
    spawner.load_state({"spawngate": {"user": "alice", "name": "", "generation": 1, "url": "http://10.0.0.6:8888"}})
    spawner.orm_spawner = None  # so Spawner.server is the object set below
    spawner._server = SimpleNamespace(base_url="/user/alice/", url="http://10.0.0.6:8888/user/alice/")
    assert await spawner.get_url() == "http://10.0.0.6:8888/user/alice/"
    await spawner.poll()  # e.g. the pod moved
    assert await spawner.get_url() == "http://10.0.0.7:8888/user/alice/"


async def test_without_state_poll_still_finds_the_server_by_name(fake, spawner_for):
    fake.add_server("alice", state="running")
    spawner = spawner_for(fake.base_url)
    spawner.load_state({})
    assert "spawngate" not in spawner.get_state()
    assert await spawner.poll() is None


async def test_load_state_ignores_foreign_or_empty_state(spawner_for):
    spawner = spawner_for("http://unused")
    spawner.load_state({"something": "else"})
    spawner.load_state({"spawngate": "garbage"})
    assert spawner.get_state() == {}
