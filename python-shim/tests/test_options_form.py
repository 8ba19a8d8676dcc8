"""options_form from spawngate's profiles; options_from_form."""

import re

import pytest
from fake_spawngate import TOKEN, unused_port

from spawngate._form import UNAVAILABLE_FIELD, UNAVAILABLE_REFUSAL
from spawngate.errors import SpawnRefused

PROFILES = [
    {
        "slug": "small",
        "display_name": "Small <script>alert(1)</script>",
        "description": 'CPU only & "cheap"',
        "default": False,
        "resources": {"cpu_request": 0.5, "cpu_limit": 2, "memory_request_mib": 512, "memory_limit_mib": 4096},
    },
    {
        "slug": "large\"><img src=x>",
        "display_name": "Large",
        "description": "",
        "default": True,
        "resources": {"cpu_limit": 8.0, "memory_limit_mib": 32768, "gpu_limit": 1},
    },
]


async def test_form_lists_this_users_profiles_escaped(fake, spawner_for):
    fake.profiles["bob"] = PROFILES
    spawner = spawner_for(fake.base_url, user="bob")
    # how JupyterHub (3.0 and later) asks for the form
    form = await spawner.get_options_form()

    [get] = fake.of("GET")
    assert get.path == "/api/users/bob/profiles"
    assert get.headers["Authorization"] == f"token {TOKEN}"

    assert "<script>" not in form and "<img" not in form
    assert "Small &lt;script&gt;alert(1)&lt;/script&gt;" in form
    assert "CPU only &amp; &quot;cheap&quot;" in form
    radios = re.findall(r'<input type="radio" name="profile" id="[^"]+" value="([^"]*)"( checked)?>', form)
    assert radios == [("small", ""), ("large&quot;&gt;&lt;img src=x&gt;", " checked")]
    assert "CPU 0.5–2 cores · memory 512–4096 MiB" in form
    assert "CPU 8 cores · memory 32768 MiB · GPU 1" in form


async def test_first_profile_is_checked_without_a_default(fake, spawner_for):
    fake.profiles["alice"] = [dict(p, default=False, slug=s) for p, s in zip(PROFILES, ["a", "b"])]
    form = await spawner_for(fake.base_url).get_options_form()
    assert re.findall(r'value="(\w)"( checked)?', form) == [("a", " checked"), ("b", "")]


@pytest.mark.parametrize("count", [0, 1])
async def test_no_form_for_one_profile_or_none(fake, spawner_for, count):
    fake.profiles["alice"] = PROFILES[:count]
    assert await spawner_for(fake.base_url).get_options_form() == ""
    assert len(fake.of("GET")) == 1


def assert_error_notice(form, *texts):
    """The form is the error notice: the reason in readable, escaped text, and no profile to pick."""
    assert 'id="spawngate-profiles-error"' in form
    assert "Server profiles are unavailable." in form
    assert "Reload this page to try again." in form
    assert 'name="profile"' not in form
    assert f'<input type="hidden" name="{UNAVAILABLE_FIELD}" value="1">' in form
    for text in texts:
        assert text in form


async def test_profiles_outage_becomes_a_readable_form(fake, spawner_for, log_records):
    fake.outage = True
    form = await spawner_for(fake.base_url).get_options_form()
    assert_error_notice(form, "spawngate could not list server profiles for alice: spawngate is restarting")
    assert any("No options form for alice" in r.getMessage() for r in log_records)


async def test_profiles_refusal_message_is_shown_escaped(fake, spawner_for):
    fake.canned.append(("GET", 403, {"reason": "Forbidden", "message": "user '<b>alice</b>' is deactivated"}))
    form = await spawner_for(fake.base_url).get_options_form()
    assert_error_notice(form, "user &#x27;&lt;b&gt;alice&lt;/b&gt;&#x27; is deactivated")
    assert "<b>alice" not in form


async def test_unreachable_spawngate_becomes_a_readable_form(spawner_for):
    url = f"http://127.0.0.1:{unused_port()}"
    form = await spawner_for(url).get_options_form()
    assert_error_notice(form, f"spawngate at {url} is unreachable")


async def test_unconfigured_spawngate_becomes_a_readable_form(spawner_for):
    form = await spawner_for("").get_options_form()
    assert_error_notice(form, "spawngate URL is not configured")


def test_posting_the_error_notice_is_refused_with_a_message(spawner_for):
    spawner = spawner_for("http://unused")
    # what JupyterHub passes for a post of the notice (nothing else is in it)
    with pytest.raises(SpawnRefused) as info:
        spawner.run_options_from_form({UNAVAILABLE_FIELD: ["1"]})
    assert str(info.value) == UNAVAILABLE_REFUSAL
    assert info.value.status_code == 503
    # JupyterHub 4.1+ shows jupyterhub_message above the form; 3.0 shows str()
    assert info.value.jupyterhub_message == UNAVAILABLE_REFUSAL


async def test_admin_configured_form_wins(fake, spawner_for):
    spawner = spawner_for(fake.base_url, options_form="<input name='x'>")
    assert await spawner.get_options_form() == "<input name='x'>"
    assert fake.requests == []


def test_options_from_form(spawner_for):
    spawner = spawner_for("http://unused")
    # form posts: dict of lists (what JupyterHub passes)
    assert spawner.run_options_from_form({"profile": ["large"]}) == {"profile": "large"}
    assert spawner.run_options_from_form({}) == {}
    # /spawn?profile=small query arguments: dict of strings
    assert spawner.options_from_query({"profile": "small"}) == {"profile": "small"}
