"""The environment sent with a start request, and keeping secrets out of logs."""

from fake_spawngate import TOKEN

HUB_ENV = {
    "PATH": "/opt/hub/bin:/usr/bin",
    "PYTHONPATH": "/opt/hub/lib",
    "LD_LIBRARY_PATH": "/opt/hub/lib64",
    "VIRTUAL_ENV": "/opt/hub",
    "CONDA_DEFAULT_ENV": "hub",
    "CONDA_PREFIX": "/opt/conda/envs/hub",
    "LANG": "C.UTF-8",
}
ENV_KEEP = list(HUB_ENV)


def hub_environment(monkeypatch):
    for key, value in HUB_ENV.items():
        monkeypatch.setenv(key, value)


async def sent_env(fake, spawner):
    await spawner.start()
    [post] = fake.of("POST")
    return post.body["env"]


async def test_hub_local_variables_are_dropped(fake, spawner_for, monkeypatch):
    hub_environment(monkeypatch)
    spawner = spawner_for(fake.base_url, env_keep=ENV_KEEP, environment={"EXTRA": "1"})
    env = await sent_env(fake, spawner)
    for key in ("PATH", "PYTHONPATH", "LD_LIBRARY_PATH", "VIRTUAL_ENV", "CONDA_DEFAULT_ENV", "CONDA_PREFIX"):
        assert key not in env, key
    assert env["LANG"] == "C.UTF-8"
    assert env["EXTRA"] == "1"
    assert env["JUPYTERHUB_API_TOKEN"] == "jupyterhub-api-token-for-alice"
    assert env["JUPYTERHUB_USER"] == "alice"
    assert env["JUPYTERHUB_SERVER_NAME"] == ""
    assert "JUPYTERHUB_API_URL" in env
    assert all(isinstance(v, str) for v in env.values())


async def test_admin_environment_is_always_sent(fake, spawner_for, monkeypatch):
    hub_environment(monkeypatch)
    spawner = spawner_for(
        fake.base_url,
        env_keep=ENV_KEEP,
        environment={"PATH": "/opt/conda/bin:/usr/bin", "CONDA_PREFIX": lambda s: f"/home/{s.user.name}/conda"},
    )
    env = await sent_env(fake, spawner)
    assert env["PATH"] == "/opt/conda/bin:/usr/bin"
    assert env["CONDA_PREFIX"] == "/home/alice/conda"
    assert "PYTHONPATH" not in env


async def test_filter_is_configurable(fake, spawner_for, monkeypatch):
    hub_environment(monkeypatch)
    spawner = spawner_for(fake.base_url, env_keep=ENV_KEEP, hub_local_env=["LANG"])
    env = await sent_env(fake, spawner)
    assert env["PATH"] == HUB_ENV["PATH"]
    assert "LANG" not in env


async def test_tokens_go_in_the_header_and_never_into_logs(fake, spawner_for, log_records):
    fake.profiles["alice"] = [{"slug": "a"}, {"slug": "b"}]
    fake.plan["result"] = "failed"
    spawner = spawner_for(fake.base_url)
    await spawner.get_options_form()
    try:
        await spawner.start()
    except Exception as e:
        assert TOKEN not in str(e)
    await spawner.poll()
    await spawner.stop()
    [event async for event in spawner.progress()]

    assert {r.headers["Authorization"] for r in fake.requests} == {f"token {TOKEN}"}
    for request in fake.requests:
        assert TOKEN not in request.path and TOKEN not in str(request.query)
        assert TOKEN not in str(request.body)
    messages = [r.getMessage() for r in log_records]
    assert any("alice" in m for m in messages), "the spawner should log what it does"
    for message in messages:
        assert TOKEN not in message
        assert "jupyterhub-api-token-for-alice" not in message
