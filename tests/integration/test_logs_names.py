"""`supctl logs NAME[:k]` picks files by the procfile's real bot and instance names (bots `web` and `web-2`)."""

from __future__ import annotations

import pytest
from harness import bot, toml_argv

pytestmark = pytest.mark.timeout(60)

PROCFILE = f"""
[supervisor]
state_dir = "state"
[defaults]
start_grace = "100ms"
[bots.web]
cmd = {toml_argv(bot("sleeper"))}
[bots.web-2]
cmd = {toml_argv(bot("sleeper"))}
[bots.api]
cmd = {toml_argv(bot("sleeper"))}
instances = 3
"""


@pytest.fixture
def fleet(master):
    m = master(PROCFILE)
    for name in ("web.log", "web-2.log", "api-0.log", "api-1.log", "api-2.log"):
        m.wait_line(r"^bot=", path=m.logs / name)
    return m


def bots_in(out: str) -> set[str]:
    return {word.split("=")[1] + ":" + line.split("instance=")[1].split()[0]
            for line in out.splitlines() for word in line.split() if word.startswith("bot=")}


def test_logs_web_shows_web_only(fleet):
    out = fleet.ctl("logs", "web")
    assert out.returncode == 0, out.stderr
    assert bots_in(out.stdout) == {"web:0"}


def test_logs_web_2_is_not_bot_web_2(fleet):
    """web has one instance, so web:2 names nothing; bot web-2's log is `supctl logs web-2`."""
    out = fleet.ctl("logs", "web:2")
    assert out.returncode != 0 and "web has instances 0..0, not '2'" in out.stderr and not out.stdout
    assert bots_in(fleet.ctl("logs", "web-2").stdout) == {"web-2:0"}
    assert bots_in(fleet.ctl("logs", "web-2:0").stdout) == {"web-2:0"}


def test_logs_of_one_instance_and_of_every_instance(fleet):
    assert bots_in(fleet.ctl("logs", "api:1").stdout) == {"api:1"}
    assert bots_in(fleet.ctl("logs", "api").stdout) == {"api:0", "api:1", "api:2"}
    assert fleet.ctl("logs", "api:3").returncode != 0
    assert bots_in(fleet.ctl("logs").stdout) == {"web:0", "web-2:0", "api:0", "api:1", "api:2"}
