"""The master's log level: the procfile's `[supervisor] log_level`, SUPCTL_LOGLEVEL over it, bad values named."""

from __future__ import annotations

import logging

import pytest

from supervisor.config import procfile as config
from supervisor.core.errors import ConfigErrors
from supervisor.output.master_log import pick_level

MINIMAL = b'[bots.a]\ncmd = ["python", "-m", "a"]\n'


def test_log_level_defaults_to_info_and_is_read():
    assert config.loads(MINIMAL, "p.toml").supervisor.log_level == "INFO"
    assert config.loads(b'[supervisor]\nlog_level = "DEBUG"\n' + MINIMAL, "p.toml").supervisor.log_level == "DEBUG"


def test_an_unknown_log_level_names_the_key():
    with pytest.raises(ConfigErrors) as e:
        config.loads(b'[supervisor]\nlog_level = "LOUD"\n' + MINIMAL, "p.toml")
    assert [x.key for x in e.value.errors] == ["supervisor.log_level"]
    assert "DEBUG" in str(e.value)


@pytest.mark.parametrize(("configured", "environ", "level"), [
    ("INFO", {}, logging.INFO),
    ("WARNING", {"SUPCTL_LOGLEVEL": ""}, logging.WARNING),
    ("INFO", {"SUPCTL_LOGLEVEL": "DEBUG"}, logging.DEBUG),
    ("DEBUG", {"SUPCTL_LOGLEVEL": " error "}, logging.ERROR),
])
def test_the_environment_wins(configured: str, environ: dict[str, str], level: int):
    assert pick_level(configured, environ) == (level, None)


def test_a_bad_environment_value_keeps_the_procfile_level_and_says_so():
    level, warning = pick_level("WARNING", {"SUPCTL_LOGLEVEL": "verbose"})
    assert level == logging.WARNING
    assert warning == "SUPCTL_LOGLEVEL='verbose' is not one of DEBUG, INFO, WARNING, ERROR; using WARNING"
