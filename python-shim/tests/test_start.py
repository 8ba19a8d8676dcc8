"""start(): the start request, long-polling, failures and cancellation."""

import asyncio

import pytest
from fake_spawngate import TOKEN, unused_port
from tornado import web

from spawngate.errors import (
    ServiceUnreachable,
    SpawnFailed,
    SpawngateConfigError,
    SpawngateError,
    SpawnRefused,
    SpawnTimeout,
)


async def test_start_returns_url_of_running_server(fake, spawner_for):
    spawner = spawner_for(fake.base_url, user_options={"profile": "large"}, args=["--debug"])
    url = await spawner.start()
    assert url == "http://10.1.2.3:8888"

    [post] = fake.of("POST")
    assert post.path == "/api/users/alice/server"
    assert post.headers["Authorization"] == f"token {TOKEN}"
    assert post.headers["Content-Type"] == "application/json"
    assert post.body["user_options"] == {"profile": "large"}
    assert post.body["args"] == ["--debug"]
    assert post.body["start_timeout"] == 10
    assert post.body["env"]["JUPYTERHUB_API_TOKEN"] == "jupyterhub-api-token-for-alice"
    assert post.body["env"]["JUPYTERHUB_USER"] == "alice"

    polls = fake.of("GET")
    assert polls, "start() must long-poll until the server runs"
    for get in polls:
        assert get.query["wait"] == "ready"
        assert 1 <= int(get.query["timeout"]) <= 10  # never beyond start_timeout (or 60)
        assert get.headers["Authorization"] == f"token {TOKEN}"


async def test_long_poll_timeout_is_capped_at_60_seconds(fake, spawner_for):
    spawner = spawner_for(fake.base_url, start_timeout=600)
    await spawner.start()
    assert [int(g.query["timeout"]) for g in fake.of("GET")] == [60]


async def test_poll_returns_none_while_start_is_in_flight(fake, spawner_for):
    fake.plan["pending_for"] = 0.5
    spawner = spawner_for(fake.base_url)
    start = asyncio.ensure_future(spawner.start())
    await asyncio.sleep(0.1)
    before = len(fake.requests)
    assert await spawner.poll() is None
    assert len(fake.requests) == before, "poll() during start() must not ask spawngate"
    assert await start == fake.url


async def test_start_of_already_running_server_is_adopted(fake, spawner_for):
    fake.add_server("alice", state="running", url="http://10.9.9.9:8888")
    url = await spawner_for(fake.base_url).start()
    assert url == "http://10.9.9.9:8888"
    assert len(fake.of("POST")) == 1
    assert fake.of("GET") == []


async def test_failed_start_raises_with_message_and_last_output(fake, spawner_for):
    fake.plan["result"] = "failed"
    with pytest.raises(SpawnFailed) as info:
        await spawner_for(fake.base_url).start()
    text = str(info.value)
    assert "pod was OOMKilled" in text
    assert "line one" in text and "<b>line two</b>" in text
    # the hub's progress API shows this attribute when present
    assert info.value.jupyterhub_message == text
    html = info.value.jupyterhub_html_message
    assert "&lt;b&gt;line two&lt;/b&gt;" in html and "<b>line" not in html


async def test_400_is_raised_with_spawngate_message(fake, spawner_for):
    spawner = spawner_for(fake.base_url, user_options={"profile": "huge"})
    with pytest.raises(SpawnRefused) as info:
        await spawner.start()
    assert str(info.value) == "unknown profile 'huge'"
    # JupyterHub's REST API relays a tornado HTTPError's status and message
    assert isinstance(info.value, web.HTTPError)
    assert info.value.status_code == 400
    assert info.value.log_message % info.value.args == "unknown profile 'huge'"


@pytest.mark.parametrize(
    "status,message",
    [
        (403, "user 'alice' is deactivated; ask an administrator"),
        (409, "server '(default)' of 'alice' is still stopping; try again shortly"),
        (429, "user 'alice' already has 2 servers (limit 2, servers.max_servers_per_user)"),
    ],
)
async def test_refusals_keep_spawngate_status_and_message(fake, spawner_for, status, message):
    fake.canned.append(("POST", status, {"reason": "x", "message": message}))
    spawner = spawner_for(fake.base_url)
    with pytest.raises(SpawnRefused) as info:
        await spawner.start()
    assert str(info.value) == message
    assert info.value.status == status and info.value.status_code == status
    # the hub's clean-up stop() after a failed start: nothing was created, unless the server was
    # still stopping (409), which spawngate keeps stopping either way
    await spawner.stop()
    assert len(fake.of("DELETE")) == (1 if status == 409 else 0)


@pytest.mark.parametrize("header,passed", [("17", {"Retry-After": "17"}), ("soon\r\nX-Evil: 1", {})])
async def test_a_limits_retry_after_reaches_the_hub(fake, spawner_for, header, passed):
    fake.canned.append(("POST", 429, {"reason": "Too Many Requests", "message": "limit"}, {"Retry-After": header.replace("\r\n", " ")}))
    with pytest.raises(SpawnRefused) as info:
        await spawner_for(fake.base_url).start()
    # JupyterHub sets an HTTPError's headers on its answer; only a number of seconds is passed on
    assert info.value.headers == passed


async def test_spawngate_failure_is_an_http_error_with_its_message(fake, spawner_for):
    fake.canned.append(("POST", 500, {"reason": "Internal Server Error", "message": "database unavailable"}))
    with pytest.raises(SpawngateError) as info:
        await spawner_for(fake.base_url).start()
    assert not isinstance(info.value, SpawnRefused)
    # the hub's pages show an HTTPError's message (not "Unhandled error starting server")
    assert isinstance(info.value, web.HTTPError) and info.value.status_code == 500
    assert info.value.log_message % info.value.args == "spawngate could not start the server: database unavailable"


async def test_wrong_token_is_an_error_naming_the_problem(fake, spawner_for):
    spawner = spawner_for(fake.base_url, service_token="wrong")
    with pytest.raises(SpawngateError) as info:
        await spawner.start()
    assert not isinstance(info.value, SpawnRefused)
    assert "invalid token" in str(info.value)


async def test_unreachable_service_names_the_url(spawner_for):
    url = f"http://127.0.0.1:{unused_port()}"
    with pytest.raises(ServiceUnreachable) as info:
        await spawner_for(url).start()
    assert url in str(info.value)
    assert "SPAWNGATE_URL" in str(info.value)
    assert info.value.status_code == 503


async def test_credentials_in_service_url_are_not_shown(spawner_for):
    port = unused_port()
    with pytest.raises(ServiceUnreachable) as info:
        await spawner_for(f"http://admin:pa55word@127.0.0.1:{port}").start()
    assert "pa55word" not in str(info.value)
    assert f"http://127.0.0.1:{port}" in str(info.value)


async def test_missing_service_url_is_a_config_error(spawner_for):
    with pytest.raises(SpawngateConfigError) as info:
        await spawner_for("").start()
    assert "SPAWNGATE_URL" in str(info.value)


async def test_service_url_and_token_default_from_environment(monkeypatch, spawner_for):
    from spawngate import RemoteSpawner

    monkeypatch.setenv("SPAWNGATE_URL", "http://spawngate.example:8000")
    monkeypatch.setenv("SPAWNGATE_HUB_TOKEN", "from-env")
    spawner = RemoteSpawner()
    assert spawner.service_url == "http://spawngate.example:8000"
    assert spawner.service_token == "from-env"


async def test_brief_5xx_while_waiting_is_retried(fake, spawner_for):
    fake.plan["pending_for"] = 0.3
    fake.canned.append(("GET", 503, {"reason": "Service Unavailable", "message": "restarting"}))
    assert await spawner_for(fake.base_url).start() == fake.url
    assert len(fake.of("GET")) >= 2


async def test_still_pending_after_start_timeout_raises_timeout(fake, spawner_for):
    fake.plan["pending_for"] = 100
    with pytest.raises(SpawnTimeout) as info:
        await spawner_for(fake.base_url, start_timeout=1).start()
    # JupyterHub reports asyncio.TimeoutError as a start timeout
    assert isinstance(info.value, asyncio.TimeoutError)


async def test_cancelled_start_stops_the_server_and_reraises(fake, spawner_for):
    fake.plan["pending_for"] = 100
    spawner = spawner_for(fake.base_url)
    # what JupyterHub >= 5.1 does at start_timeout
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(spawner.start(), 0.3)
    for _ in range(100):
        if fake.of("DELETE"):
            break
        await asyncio.sleep(0.02)
    [delete] = fake.of("DELETE")
    assert delete.path == "/api/users/alice/server"
    assert delete.headers["Authorization"] == f"token {TOKEN}"
    await asyncio.sleep(0.1)
    assert fake.servers[("alice", "")].model["state"] == "stopped"
    # start() is no longer in flight: poll asks spawngate again
    assert await spawner.poll() == 0


async def test_cancellation_propagates_as_cancelled_error(fake, spawner_for):
    fake.plan["pending_for"] = 100
    task = asyncio.ensure_future(spawner_for(fake.base_url).start())
    await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_config_error_leaves_no_start_in_flight(fake, spawner_for):
    spawner = spawner_for("")
    with pytest.raises(SpawngateConfigError):
        await spawner.start()
    spawner.service_url = fake.base_url
    assert await spawner.poll() == 0  # asks spawngate: start() is not in flight
    assert len(fake.of("GET")) == 1



async def test_stop_after_unreachable_start_returns_at_once(spawner_for):
    """The hub calls stop() after a failed start; nothing exists remotely, so it must not wait."""
    import time

    spawner = spawner_for(f"http://127.0.0.1:{unused_port()}", stop_timeout=30)
    with pytest.raises(ServiceUnreachable):
        await spawner.start()
    t0 = time.monotonic()
    await spawner.stop()
    assert time.monotonic() - t0 < 1


async def test_start_whose_answer_is_lost_is_asked_again_and_adopts_the_server(fake, spawner_for):
    """A busy spawngate acts on the start but answers after request_timeout: ask again, no second server."""
    fake.post_answer_delays = [2.5]
    spawner = spawner_for(fake.base_url, request_timeout=1, start_timeout=10)
    assert await spawner.start() == fake.url
    assert len(fake.of("POST")) == 2
    assert fake.generation == 1  # the repeated start adopted the first one's server


async def test_start_never_answered_times_out_and_the_hubs_stop_reaches_spawngate(fake, spawner_for):
    """The server may exist remotely, so the clean-up stop() after the failure must tell spawngate."""
    fake.post_answer_delays = [30, 30, 30, 30]
    spawner = spawner_for(fake.base_url, request_timeout=1, start_timeout=3)
    with pytest.raises(SpawnTimeout) as info:
        await spawner.start()
    assert "did not answer the start request" in str(info.value)
    assert isinstance(info.value, asyncio.TimeoutError)  # JupyterHub reports a start timeout
    await spawner.stop()
    [delete] = fake.of("DELETE")
    assert delete.path == "/api/users/alice/server"
    assert fake.servers[("alice", "")].model["state"] == "stopped"
