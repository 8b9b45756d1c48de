"""`supctl validate` reports every error of a broken procfile in one pass, named as given, with pm2/supervisord hints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from supervisor.config.hints import HINTS, unknown_bot_key

BROKEN = '''
[bots.trader]
cmd = ["python", "-m", "trader"]
instances = "two"
autorestart = true
max_memory_restart = "500M"
stop_timeout = 10
stop_signal = "NOPE"
restart_cron = "61 * * * *"
env_file = ".env.missing"
depends_on = ["feeed"]
[[bots.trader.health]]
check = "http"
url = "http://127.0.0.1:1/"
every = 5
[bots.feed]
cmd = "python feed.py"
numprocs = 2
directory = "/tmp"
environment = { A = "1" }
stopwaitsecs = 5
command = "python feed.py"
'''


def validate(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "conf").mkdir(exist_ok=True)
    (tmp_path / "conf" / "broken.toml").write_text(BROKEN)
    env = {k: v for k, v in os.environ.items() if k != "SUPCTL_PROCFILE"}
    return subprocess.run([sys.executable, "-m", "supervisor.cli.main", "validate", "conf/broken.toml", *extra], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)


def test_every_error_in_one_pass_named_as_given(tmp_path: Path) -> None:
    out = validate(tmp_path)
    assert out.returncode == 1
    lines = out.stderr.splitlines()
    keys = {line.split(": ")[1] for line in lines[:-1]}
    assert keys == {
        "bots.trader.instances", "bots.trader.autorestart", "bots.trader.max_memory_restart", "bots.trader.stop_timeout",
        "bots.trader.stop_signal", "bots.trader.restart_cron", "bots.trader.env_file", "bots.trader.depends_on[0]",
        "bots.trader.health[0].every", "bots.feed.numprocs", "bots.feed.directory", "bots.feed.environment",
        "bots.feed.stopwaitsecs", "bots.feed.command",
    }, lines
    assert all(line.startswith("conf/broken.toml: ") for line in lines), lines  # never the absolute path
    assert lines[-1] == f"conf/broken.toml: {len(lines) - 1} errors"


def test_hints_for_people_coming_from_pm2_and_supervisord(tmp_path: Path) -> None:
    text = validate(tmp_path).stderr
    assert "bots.trader.autorestart: unknown key; pm2 and supervisord's autorestart is `restart` here" in text
    assert "did you mean 'autostart'" not in text
    assert 'max_memory_restart: unknown key; pm2\'s max_memory_restart is a memory health check here' in text
    assert "bots.feed.numprocs: unknown key; supervisord's numprocs is `instances` here" in text
    assert "bots.feed.command: unknown key; supervisord's command is `cmd` here" in text
    assert "bots.feed.directory: unknown key; supervisord's directory is `cwd` here" in text
    assert "bots.feed.environment: unknown key; supervisord's environment is `env` here" in text
    assert "bots.feed.stopwaitsecs: unknown key; supervisord's stopwaitsecs is `stop_timeout` here" in text
    assert 'bots.trader.stop_timeout: expected a duration string like' in text and 'write "10s"' in text


def test_validate_json_lists_every_problem(tmp_path: Path) -> None:
    out = validate(tmp_path, "--json")
    doc = json.loads(out.stdout)
    assert out.returncode == 1 and doc["ok"] is False and doc["file"] == "conf/broken.toml" and len(doc["errors"]) == 14
    assert {e["file"] for e in doc["errors"]} == {"conf/broken.toml"}


@pytest.mark.parametrize("key", sorted(HINTS))
def test_every_hint_is_for_a_foreign_key_and_names_real_ones(key: str) -> None:
    import re

    import msgspec

    from supervisor.config.procfile import BotConfig

    ours = {f.name for f in msgspec.structs.fields(BotConfig)}
    message = unknown_bot_key(key, tuple(ours))
    assert key not in ours and message.startswith("unknown key; ")
    assert set(re.findall(r"`([a-z_]+)`", message)) <= ours, message
