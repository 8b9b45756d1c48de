"""Stopping: stop_timeout then SIGKILL to the whole group, dependency order, graceful master shutdown, master SIGKILL."""

from __future__ import annotations

import re
import signal
import time

import psutil
import pytest
from harness import bot, guardian_of, toml_argv, wait_until

pytestmark = pytest.mark.timeout(60)

HEAD = """
[supervisor]
state_dir = "state"
[defaults]
start_grace = "200ms"
backoff = { initial = "50ms", factor = 2.0, max = "1s", jitter = 0.0 }
"""


def family(m, name: str) -> tuple[psutil.Process, psutil.Process]:
    (line,) = m.wait_line(r"child=(\d+) grandchild=(\d+)", path=m.logs / f"{name}.log")
    return psutil.Process(int(line.group(1))), psutil.Process(int(line.group(2)))


def test_stopping_to_stopped_kills_sigterm_ignoring_child_and_grandchild(master):
    m = master(HEAD + f"""
    [bots.stubborn]
    cmd = {toml_argv(bot("stubborn"))}
    stop_timeout = "500ms"
    """)
    m.wait_transition("stubborn", "RUNNING")
    child, grandchild = family(m, "stubborn")
    assert grandchild.ppid() == child.pid and psutil.Process(child.pid).ppid() == m.pid
    began = time.monotonic()
    m.signal(signal.SIGTERM)
    gone, alive = psutil.wait_procs([child, grandchild], timeout=10)
    took = time.monotonic() - began
    assert alive == []
    assert took >= 0.45, "SIGKILL came before stop_timeout"
    assert m.wait_exit() == 0
    (stopped,) = m.wait_transition("stubborn", "STOPPED")
    assert stopped.old == "STOPPING"
    assert m.wait_line(r"still alive after stop_timeout 500ms, sent SIGKILL")


def test_starting_to_stopping_while_child_ignores_sigterm(master):
    """A stop during start_grace must not flip STOPPING -> RUNNING when start_grace runs out mid-stop."""
    m = master(HEAD + f"""
    [bots.stubborn]
    cmd = {toml_argv(bot("stubborn"))}
    start_grace = "600ms"
    stop_timeout = "1500ms"
    """)
    m.wait_transition("stubborn", "STARTING")
    child, grandchild = family(m, "stubborn")  # printed at once, well inside start_grace
    m.signal(signal.SIGTERM)
    assert m.wait_exit() == 0, m.output()
    _, alive = psutil.wait_procs([child, grandchild], timeout=10)
    assert alive == []
    assert [(t.old, t.new) for t in m.transitions("stubborn")] == [
        ("STOPPED", "STARTING"), ("STARTING", "STOPPING"), ("STOPPING", "STOPPED")]
    assert "Traceback" not in m.output()


DEPS = HEAD + f"""
[bots.web]
cmd = {toml_argv(bot("sleeper"))}
depends_on = ["api"]
[bots.api]
cmd = {toml_argv(bot("sleeper"))}
depends_on = ["db"]
instances = 2
[bots.db]
cmd = {toml_argv(bot("sleeper"))}
[bots.cron]
cmd = {toml_argv(bot("sleeper"))}
"""


def test_dependency_order_on_start_and_graceful_stop(master):
    m = master(DEPS)
    m.wait_transition("web", "RUNNING")
    m.wait_transition("cron", "RUNNING")
    ts = m.transitions()
    first = lambda name, new: min(t.line for t in ts if t.bot == name and t.new == new)  # noqa: E731
    last = lambda name, new: max(t.line for t in ts if t.bot == name and t.new == new)  # noqa: E731
    assert last("db", "RUNNING") < first("api", "STARTING")
    assert last("api", "RUNNING") < first("web", "STARTING")
    assert m.wait_line(r"web: waiting for api to be RUNNING")
    bots = [psutil.Process(pid) for pid in m.bot_pids()]
    assert len(bots) == 5  # web, api:0, api:1, db, cron

    assert m.stop() == 0  # SIGTERM: graceful, exit status 0
    ts = m.transitions()
    assert last("web", "STOPPED") < first("api", "STOPPING")
    assert last("api", "STOPPED") < first("db", "STOPPING")
    for name in ("web", "api", "db", "cron"):
        assert ts[-1].line > 0 and any(t.bot == name and t.new == "STOPPED" for t in ts)
    text = m.text()
    assert "received SIGTERM: shutting down" in text
    assert text.rstrip().endswith("shutdown complete")
    _, alive = psutil.wait_procs(bots, timeout=10)
    assert alive == [], f"bots outlived a graceful shutdown: {[p.pid for p in alive]}"


def test_sigint_is_graceful_too(master):
    m = master(DEPS)
    m.wait_transition("web", "RUNNING")
    m.signal(signal.SIGINT)
    assert m.wait_exit() == 0
    assert m.wait_line(r"received SIGINT")
    assert len(m.transitions(None)) and all(
        any(t.name == n and t.new == "STOPPED" for t in m.transitions()) for n in ("web:0", "api:0", "api:1", "db:0", "cron:0"))


def test_master_sigkill_leaves_no_children_or_grandchildren(master):
    m = master(HEAD + f"""
    [bots.stubborn]
    cmd = {toml_argv(bot("stubborn"))}
    instances = 2
    [bots.idle]
    cmd = {toml_argv(bot("sleeper"))}
    """)
    m.wait_transition("stubborn", "RUNNING", count=2)
    m.wait_transition("idle", "RUNNING")
    procs = [p for k in range(2) for p in family(m, f"stubborn-{k}")]
    procs += [psutil.Process(pid) for pid in m.bot_pids()]
    procs += [wait_until(lambda: guardian_of(m.pid), 10, "the guardian")]
    assert len({p.pid for p in procs}) == 2 * 2 + 1 + 1  # stubborn children (also bots), grandchildren, idle, guardian
    m.signal(signal.SIGKILL)
    m.wait_exit()
    gone, alive = psutil.wait_procs(procs, timeout=10)
    assert alive == [], f"still running after the master's SIGKILL: {[p.pid for p in alive]}"


FROZEN = ("import signal, sys; signal.signal(signal.SIGTERM, lambda *_: sys.exit(0)); print('ready', flush=True); "
          "[signal.pause() for _ in iter(int, 1)]")


def test_sigstopped_bot_stops_within_its_grace(master):
    """SIGCONT follows the stop signal, so a frozen bot runs its SIGTERM handler instead of waiting for SIGKILL."""
    import sys

    m = master(HEAD + f"""
    [bots.frozen]
    cmd = {toml_argv([sys.executable, "-c", FROZEN])}
    stop_timeout = "30s"
    """)
    (running,) = m.wait_transition("frozen", "RUNNING")
    m.wait_line(r"^ready$", path=m.logs / "frozen.log")
    pid = int(re.search(r"pid (\d+)", running.reason).group(1))
    bot_proc = psutil.Process(pid)
    bot_proc.suspend()
    wait_until(lambda: bot_proc.status() == psutil.STATUS_STOPPED, 10, "the bot to be stopped")
    began = time.monotonic()
    out = m.ctl("stop", "frozen", timeout=60)
    took = time.monotonic() - began
    assert out.returncode == 0, out.stderr
    assert took < 15, f"stop took {took:.1f}s: the frozen bot waited for SIGKILL at stop_timeout"
    (stopped,) = m.wait_transition("frozen", "STOPPED")
    assert not any("sent SIGKILL" in line for line in m.lines())
    assert m.stop() == 0
