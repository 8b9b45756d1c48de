"""The procfile schema: defaults, [defaults] merging, and every kind of error, each naming file and dotted key."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from supervisor.config import procfile as config
from supervisor.config.procfile import BackoffConfig, LogConfig, RestartLimit
from supervisor.core.errors import ConfigError, ConfigErrors
from supervisor.core.units import Duration, Size

MINIMAL = b'[bots.a]\ncmd = ["python", "-m", "a"]\n'


def errors_of(text: str | bytes, file: str = "p.toml") -> list[ConfigError]:
    with pytest.raises(ConfigErrors) as e:
        config.loads(text, file)
    assert all(isinstance(x, ConfigError) and x.file == file for x in e.value.errors)
    return e.value.errors


def keys(text: str | bytes) -> list[str]:
    return [e.key for e in errors_of(text)]


def test_schema_defaults(tmp_path: Path):
    p = config.loads(MINIMAL, str(tmp_path / "procfile.toml"))
    a = p.bots["a"]
    assert a.argv() == ["python", "-m", "a"]
    assert (a.shell, a.cwd, a.env, a.env_file, a.instances, a.autostart) == (False, None, {}, None, 1, True)
    assert a.restart == "on-failure" and a.success_codes == [0]
    assert a.backoff == BackoffConfig(initial=Duration("100ms"), factor=2.0, max=Duration("30s"), jitter=0.1)
    assert a.restart_limit == RestartLimit(count=10, window=Duration("5m"))
    assert (a.start_grace, a.stop_timeout, a.signum(), a.depends_on) == (1.0, 10.0, signal.SIGTERM, [])
    assert p.log_config("a") == LogConfig(max_size=Size("50MB"), backups=5, timestamps=False)
    assert p.state_dir == (tmp_path / ".supctl").resolve()
    assert p.bot_cwd("a") == tmp_path.resolve()
    assert (a.backoff.initial, a.backoff.max, a.restart_limit.window, a.start_timeout) == (0.1, 30, 300, 60)
    assert (str(a.backoff.initial), str(a.restart_limit.window)) == ("100ms", "5m")  # shown as written


def test_cmd_string_is_shlex_split_and_shell_only_when_asked():
    p = config.loads(b"""
[bots.a]
cmd = "python -c 'print(1)'"
[bots.b]
cmd = "echo $HOME | wc"
shell = true
""", "p.toml")
    assert p.bots["a"].argv() == ["python", "-c", "print(1)"]
    assert p.bots["b"].argv() == ["/bin/sh", "-c", "echo $HOME | wc"]


def test_defaults_merge_nested_tables_key_by_key():
    p = config.loads(b"""
[defaults]
restart = "always"
start_grace = "2s"
backoff = { initial = "1s", max = "9s" }
restart_limit = { count = 3 }
log = { max_size = "1MB", backups = 2 }
env = { A = "1", B = "2" }
[bots.a]
cmd = "a"
backoff = { max = "5s" }
log = { timestamps = true }
env = { B = "x", C = "3" }
start_grace = "3s"
[bots.b]
cmd = "b"
""", "p.toml")
    a, b = p.bots["a"], p.bots["b"]
    assert a.backoff == BackoffConfig(initial=Duration("1s"), factor=2.0, max=Duration("5s"), jitter=0.1)
    assert a.log == LogConfig(max_size=Size("1MB"), backups=2, timestamps=True)
    assert a.env == {"A": "1", "B": "x", "C": "3"}
    assert (a.restart, a.start_grace) == ("always", 3.0)
    assert b.backoff == BackoffConfig(initial=Duration("1s"), factor=2.0, max=Duration("9s"), jitter=0.1)
    assert b.restart_limit == RestartLimit(count=3, window=Duration("5m"))
    assert b.log == LogConfig(max_size=Size("1MB"), backups=2) and b.env == {"A": "1", "B": "2"}
    assert b.start_grace == 2.0


def test_supervisor_log_is_the_default_for_bots_without_one():
    p = config.loads(b'[supervisor]\nlog = { max_size = "2KB" }\n' + MINIMAL, "p.toml")
    assert p.log_config("a").max_size == 2000


def test_wrong_type_names_dotted_key_never_msgspec_path():
    errs = errors_of(b'[bots.trader]\ncmd = "t"\ninstances = "two"\n')
    assert [e.key for e in errs] == ["bots.trader.instances"]
    text = str(errs[0])
    assert text.startswith("p.toml: bots.trader.instances: expected an integer, found string 'two'")
    assert "$" not in text


def test_nested_wrong_type_keys():
    got = set(keys(b'[bots.t]\ncmd = "t"\nbackoff = { factor = "x" }\nenv = { A = 1 }\nsuccess_codes = [0, "1"]\n'))
    assert got == {"bots.t.backoff.factor", "bots.t.env.A", "bots.t.success_codes[1]"}
    assert not any("$" in k for k in got)


def test_every_error_reported_not_just_the_first():
    errs = errors_of(b"""
[bots.a]
cmd = "a"
instances = 0
restart = "sometimes"
[bots.b]
instances = 2
""")
    # type errors and value checks (instances >= 1, signal names) are all reported in one pass
    assert {e.key for e in errs} == {"bots.a.restart", "bots.a.instances", "bots.b.cmd"}
    by = {e.key: e.message for e in errs}
    assert "'always'" in by["bots.a.restart"] and "'sometimes'" in by["bots.a.restart"]
    assert by["bots.b.cmd"] == "is required"


def test_bad_values_after_types_check():
    by = {e.key: e.message for e in errors_of(b"""
[bots.a]
cmd = "a"
instances = -1
start_grace = "soon"
backoff = { factor = 0.5, jitter = 2.0, max = "10 parsecs" }
restart_limit = { count = -1, window = "1y" }
log = { max_size = "12", backups = -1 }
stop_signal = "NOPE"
""")}
    assert set(by) == {"bots.a.instances", "bots.a.start_grace", "bots.a.backoff.factor", "bots.a.backoff.jitter",
                       "bots.a.backoff.max", "bots.a.restart_limit.count", "bots.a.restart_limit.window",
                       "bots.a.log.max_size", "bots.a.log.backups", "bots.a.stop_signal"}
    assert "'soon'" in by["bots.a.start_grace"] and "250ms" in by["bots.a.start_grace"]
    assert by["bots.a.start_grace"].count("found") == 1, by["bots.a.start_grace"]


@pytest.mark.parametrize("text, line, col", [
    (b'[bots.a]\ncmd = "a\n', 2, 9),
    (b'[bots.a]\ncmd = = 1\n', 2, 7),
    (b'[bots.a]\n[bots.a]\n', 2, 8),
    (b'[bots.a]\ncmd = [1,\n', 2, 10),
    (b'[bots.a]\ncmd = "\xff"\n', 2, 8),
])
def test_toml_syntax_error_has_line_and_column(text, line, col):
    (e,) = errors_of(text)
    assert (e.line, e.col) == (line, col)
    assert str(e).startswith(f"p.toml:{line}:{col}: ")


@pytest.mark.parametrize("text, key, hint", [
    (b'[bots.a]\ncmd = "a"\ninstance = 2\n', "bots.a.instance", "did you mean 'instances'?"),
    (b'[bots.a]\ncmd = "a"\nbackoff = { inital = "1s" }\n', "bots.a.backoff.inital", "did you mean 'initial'?"),
    (b'[bot.a]\ncmd = "a"\n', "bot", "did you mean 'bots'?"),
    (b'[supervisor]\nstatedir = "x"\n[bots.a]\ncmd = "a"\n', "supervisor.statedir", "did you mean 'state_dir'?"),
    (b'[defaults]\nrestrat = "always"\n[bots.a]\ncmd = "a"\n', "defaults.restrat", "did you mean 'restart'?"),
])
def test_unknown_key_did_you_mean(text, key, hint):
    (e,) = errors_of(text)
    assert e.key == key and "unknown" in e.message and hint in e.message


def test_unknown_key_without_a_close_match_has_no_hint():
    (e,) = errors_of(b'[bots.a]\ncmd = "a"\nzzzzzz = 1\n')
    assert e.key == "bots.a.zzzzzz" and "did you mean" not in e.message


def test_unknown_dependency_named():
    (e,) = errors_of(b'[bots.feed]\ncmd = "f"\n[bots.trader]\ncmd = "t"\ndepends_on = ["fed"]\n')
    assert e.key == "bots.trader.depends_on[0]"
    assert "unknown bot 'fed'" in e.message and "did you mean 'feed'?" in e.message


def test_dependency_cycle_named():
    errs = errors_of(b"""
[bots.a]
cmd = "a"
depends_on = ["b"]
[bots.b]
cmd = "b"
depends_on = ["c"]
[bots.c]
cmd = "c"
depends_on = ["a"]
[bots.d]
cmd = "d"
depends_on = ["d"]
""")
    msgs = sorted(e.message for e in errs)
    assert any("dependency cycle: a -> b -> c -> a" in m for m in msgs)
    assert any("dependency cycle: d -> d" in m for m in msgs)


def test_defaults_cannot_hold_per_bot_keys():
    assert set(keys(b'[defaults]\ncmd = "x"\ndepends_on = ["a"]\n' + MINIMAL)) == {"defaults.cmd", "defaults.depends_on"}


def test_env_file_missing(tmp_path: Path):
    (e,) = errors_of(b'[bots.a]\ncmd = "a"\nenv_file = "secrets.env"\n', str(tmp_path / "p.toml"))
    assert e.key == "bots.a.env_file" and "secrets.env" in e.message


def test_env_file_read_and_env_wins(tmp_path: Path):
    (tmp_path / "a.env").write_text("# comment\nA=1\nB='two words'\nexport C=3\n")
    f = tmp_path / "p.toml"
    f.write_bytes(b'[bots.a]\ncmd = "a"\nenv_file = "a.env"\nenv = { C = "env" }\n')
    p = config.load(f)
    assert p.bot_env("a") == {"A": "1", "B": "two words", "C": "env"}


def test_missing_file_and_no_bots(tmp_path: Path):
    with pytest.raises(ConfigErrors) as e:
        config.load(tmp_path / "nope.toml")
    assert "cannot read" in str(e.value)
    (err,) = errors_of(b"[supervisor]\n")
    assert err.key == "bots" and "no bots" in err.message


def test_bad_bot_name_and_bots_not_a_table():
    assert keys(b'[bots."a b"]\ncmd = "x"\n') == ["bots.a b"]
    assert keys(b'bots = 3\n') == ["bots"]


def test_start_order_puts_dependencies_first():
    p = config.loads(b"""
[bots.web]
cmd = "w"
depends_on = ["api"]
[bots.api]
cmd = "a"
depends_on = ["db", "cache"]
[bots.db]
cmd = "d"
[bots.cache]
cmd = "c"
""", "p.toml")
    order = p.start_order()
    assert sorted(order) == ["api", "cache", "db", "web"]
    assert order.index("db") < order.index("api") < order.index("web")
    assert order.index("cache") < order.index("api")


def test_two_writers_never_share_a_log_file():
    errs = errors_of('[bots.supervisor]\ncmd = "true"\n[bots.x]\ncmd = "true"\ninstances = 2\n[bots.x-1]\ncmd = "true"\n'
                     '[tasks.x-0]\ncmd = "true"\nevery = "1m"\n')
    assert [(e.key, e.message.split(";")[0]) for e in errs] == [
        ("bots.supervisor", "its log file supervisor.log would be shared with the master's own log"),
        ("bots.x-1", "its log file x-1.log would be shared with bots.x"),
        ("tasks.x-0", "its log file x-0.log would be shared with bots.x"),
    ]


def test_tasks_need_exactly_one_schedule_and_valid_values():
    errs = errors_of('[bots.a]\ncmd = "true"\nrestart_cron = "0 4 * *"\n'
                     '[tasks.both]\ncmd = "true"\ncron = "0 4 * * *"\nevery = "1m"\n'
                     '[tasks.bad]\ncmd = "true"\nevery = "soon"\ntimeot = "1s"\n')
    keys = {e.key for e in errs}
    assert keys == {"bots.a.restart_cron", "tasks.both", "tasks.bad.every", "tasks.bad.timeot"}
    assert any("did you mean 'timeout'" in e.message for e in errs)


def test_watch_patterns_are_checked_at_load(tmp_path: Path):
    (tmp_path / "src").mkdir()
    text = b"""
[bots.a]
cmd = "a"
watch = ["src/", "nope/", "*.py"]
watch_ignore = ["../secrets"]
"""
    with pytest.raises(ConfigErrors) as info:
        config.loads(text, str(tmp_path / "procfile.toml"))
    by = {e.key: e.message for e in info.value.errors}
    assert set(by) == {"bots.a.watch[1]", "bots.a.watch_ignore[0]"}
    assert "nope is not a directory" in by["bots.a.watch[1]"]
    assert "under the bot's directory" in by["bots.a.watch_ignore[0]"]


def test_bus_allow_lists_are_open_by_default_merge_from_defaults_and_name_a_bad_pattern():
    p = config.loads('[defaults]\nbus = { subscribe = ["feed.>"] }\n[bots.a]\ncmd = "true"\nbus = { publish = ["a.>"] }\n'
                     '[bots.b]\ncmd = "true"\n', "p.toml")
    assert (p.bots["a"].bus.publish, p.bots["a"].bus.subscribe, p.bots["a"].bus.serve) == (["a.>"], ["feed.>"], None)
    assert p.bots["b"].bus.publish is None
    with pytest.raises(ConfigErrors) as e:
        config.loads('[bots.a]\ncmd = "true"\nbus = { serve = ["ok", "a.>.b"] }\n', "p.toml")
    assert "p.toml: bots.a.bus.serve[1]: bad pattern 'a.>.b': '>' must be the last token" in str(e.value)
