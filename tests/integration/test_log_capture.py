"""Bot output into state_dir/logs: capture, stderr tag, partial last line, rotation, timestamps."""

from __future__ import annotations

import re

import pytest
from harness import bot, toml_argv, wait_until

pytestmark = pytest.mark.timeout(60)

HEAD = """
[supervisor]
state_dir = "state"
[defaults]
start_grace = "100ms"
restart = "never"
"""


def test_stdout_stderr_and_partial_last_line_kept(master):
    m = master(HEAD + f"""
    [bots.w]
    cmd = {toml_argv(bot("writer", "lines", 3, 20, "stderr", 2, "partial", "no newline at exit"))}
    """)
    m.wait_transition("w", "EXITED")
    m.wait_line(r"no newline at exit", path=m.logs / "w.log")
    lines = m.lines(m.logs / "w.log")
    assert [ln for ln in lines if ln.startswith("line ")] == [f"line {i:06d} " + "x" * 7 for i in range(3)]
    assert [ln for ln in lines if ln.startswith("[stderr] ")] == ["[stderr] err 0", "[stderr] err 1"]
    assert lines[-1] == "no newline at exit"
    assert m.text(m.logs / "w.log").endswith("no newline at exit\n")
    assert m.stop() == 0


def test_rotation_keeps_n_backups(master):
    m = master(HEAD + f"""
    [bots.w]
    cmd = {toml_argv(bot("writer", "lines", 1000, 100))}
    log = {{ max_size = "10KB", backups = 3 }}
    """)
    m.wait_transition("w", "EXITED")
    # the last line may sit in w.log or, if it filled the file exactly, already in w.log.1
    wait_until(lambda: any("line 000999 " in m.text(p) for p in m.logs.glob("w.log*")), 15, "the last line")
    backups = sorted(p.name for p in m.logs.glob("w.log.*"))
    assert backups == ["w.log.1", "w.log.2", "w.log.3"]
    for n in (1, 2, 3):
        size = (m.logs / f"w.log.{n}").stat().st_size
        assert 10_000 - 100 < size <= 10_000  # cut at the last whole 100-byte line that fits
    # the newest lines survive, in order, with no gap across the files
    kept = []
    for name in ("w.log.3", "w.log.2", "w.log.1", "w.log"):
        kept += [int(x) for x in re.findall(r"^line (\d+) ", m.text(m.logs / name), re.M)]
    assert kept == list(range(kept[0], 1000))
    assert m.stop() == 0


def test_timestamps_prefix_every_line(master):
    m = master(HEAD + f"""
    [bots.w]
    cmd = {toml_argv(bot("writer", "lines", 5, 30, "stderr", 1, "partial", "tail"))}
    log = {{ timestamps = true }}
    """)
    m.wait_transition("w", "EXITED")
    m.wait_line(r"tail$", path=m.logs / "w.log")
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d "
    lines = m.lines(m.logs / "w.log")
    assert len(lines) == 7
    for ln in lines:
        assert re.match(stamp + r"(line \d{6} x+|\[stderr\] err 0|tail)$", ln), ln
    assert m.stop() == 0


def test_log_defaults_from_supervisor_section(master):
    m = master("""
    [supervisor]
    state_dir = "state"
    log = { max_size = "2KB", backups = 1 }
    [defaults]
    start_grace = "100ms"
    restart = "never"
    [bots.w]
    cmd = """ + toml_argv(bot("writer", "lines", 100, 100)) + "\n")
    m.wait_transition("w", "EXITED")
    wait_until(lambda: any("line 000099 " in m.text(p) for p in m.logs.glob("w.log*")), 15, "the last line")
    assert sorted(p.name for p in m.logs.glob("w.log*")) == ["w.log", "w.log.1"]
    assert m.stop() == 0
