"""Bounds (issue 12 item 6): every number in a procfile has a range checked at validation, with an error naming
the key; nesting too deep for the parser is an error message, never a RecursionError."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from supervisor.config import paths
from supervisor.config.procfile import loads
from supervisor.core.errors import ConfigError, ConfigErrors

HOSTILE = '''
[supervisor]
log = { max_size = "1KB", backups = 3000000 }
[bots.a]
cmd = "x"
instances = 100000000
success_codes = [0, 256]
backoff = { factor = 1e300, jitter = 2.0, initial = "2d" }
restart_limit = { count = 9223372036854775807, window = "400d" }
[bots.b]
cmd = "y"
start_grace = "%s"
''' % ("9" * 400 + "s")


def errors_of(text: str) -> dict[str, str]:
    with pytest.raises(ConfigErrors) as e:
        loads(text, "procfile.toml")
    return {err.key: err.message for err in e.value.errors}


def test_out_of_range_numbers_are_each_refused_by_key() -> None:
    began = time.process_time()
    found = errors_of(HOSTILE)
    assert time.process_time() - began < 5  # 10^8 instances once took 20 s and 2.6 GB here
    assert found["supervisor.log.max_size"] == "expected 1KiB to 1TiB, found 1000B"
    assert found["supervisor.log.backups"] == "expected 0 to 100, found 3,000,000"
    assert found["bots.a.instances"] == "expected 1 to 1,000, found 100,000,000"
    assert found["bots.a.success_codes[1]"] == "expected an exit code 0 to 255, found 256"
    assert found["bots.a.backoff.factor"] == "expected 1 to 100, found 1e+300"
    assert found["bots.a.backoff.jitter"] == "expected 0 to 1, found 2"
    assert found["bots.a.backoff.initial"] == "expected 0ms to 1d, found 2d"
    assert found["bots.a.restart_limit.count"] == "expected 0 to 1,000,000, found 9,223,372,036,854,775,807"
    assert found["bots.a.restart_limit.window"].startswith("expected a duration of at most 366d")
    assert found["bots.b.start_grace"].startswith("expected a duration like")  # 400 digits: never infinity


def test_too_many_instances_in_all_is_refused() -> None:
    bots = "".join(f'[bots.b{k}]\ncmd = "x"\ninstances = 1000\n' for k in range(11))
    assert errors_of(bots) == {"bots": "expected at most 10,000 instances in all, found 11,000"}


def test_defaults_are_held_to_the_same_ranges() -> None:
    assert errors_of('[defaults]\nstop_timeout = "2d"\n[bots.a]\ncmd = "x"\n') == {
        "defaults.stop_timeout": "expected 0ms to 1d, found 2d"}


@pytest.mark.parametrize("depth", [40, 5000])
def test_deeply_nested_toml_is_an_error_message_not_a_recursion_error(tmp_path: Path, depth: int) -> None:
    text = '[bots.a]\ncmd = "x"\nenv = ' + "[" * depth + "]" * depth + "\n"
    found = errors_of(text)
    assert list(found.values()) == ["arrays or tables nested more than 32 levels deep; a procfile needs a few"]
    f = tmp_path / "procfile.toml"
    f.write_text(text)
    if depth > 900:  # what every verb reads to find the master
        with pytest.raises(ConfigError, match="nested too deeply to parse"):
            paths.state_dir_of(f)
