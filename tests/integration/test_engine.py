"""A real master with real children: instances, restarts with backoff, the restart limit, restart policies."""

from __future__ import annotations

import re

import psutil
import pytest
from harness import bot, toml_argv

pytestmark = pytest.mark.timeout(60)

HEAD = """
[supervisor]
state_dir = "state"
[defaults]
start_grace = "200ms"
stop_timeout = "2s"
backoff = { initial = "50ms", factor = 2.0, max = "1s", jitter = 0.0 }
"""


def test_stopped_to_running_for_each_instance(master):
    m = master(HEAD + f"""
    [bots.worker]
    cmd = {toml_argv(bot("sleeper"))}
    instances = 3
    """)
    running = m.wait_transition("worker", "RUNNING", count=3)
    assert sorted(t.name for t in running) == ["worker:0", "worker:1", "worker:2"]
    for k in range(3):
        names = [(t.old, t.new) for t in m.transitions(f"worker:{k}")]
        assert names == [("STOPPED", "STARTING"), ("STARTING", "RUNNING")]
        (hello,) = m.wait_line(r"^bot=(\S+) instance=(\d+) pid=(\d+) unbuffered=(\S+)", path=m.logs / f"worker-{k}.log")
        assert hello.group(1, 2, 4) == ("worker", str(k), "1")
    assert not (m.logs / "worker.log").exists()
    pids = {int(m.wait_line(r"pid=(\d+)", path=m.logs / f"worker-{k}.log")[0].group(1)) for k in range(3)}
    assert pids == set(m.bot_pids())
    for pid in pids:  # each instance leads its own session and process group
        assert psutil.Process(pid).pid == __import__("os").getsid(pid) == __import__("os").getpgid(pid)
    assert m.stop() == 0


def test_starting_to_backoff_with_growing_delays_then_fatal(master):
    m = master(HEAD + f"""
    [bots.crash]
    cmd = {toml_argv(bot("crasher", 3))}
    restart_limit = {{ count = 4, window = "1m" }}
    start_grace = "10s"  # a crash during a Python start on busy cores must still count as before start_grace
    """)
    fatal = m.wait_transition("crash", "FATAL")
    backoffs = m.wait_transition("crash", "BACKOFF", count=4)
    delays = [float(re.search(r"restart \d+ in ([\d.]+)s", t.reason).group(1)) for t in backoffs]
    assert delays == [0.05, 0.1, 0.2, 0.4]
    assert all("code 3" in t.reason and "exited before start_grace" in t.reason for t in backoffs)
    # each restart waits at least its delay (log stamps have ms resolution)
    starts = [t for t in m.transitions("crash") if t.old == "BACKOFF" and t.new == "STARTING"]
    assert len(starts) == 4
    for b, s, d in zip(backoffs, starts, delays):
        assert s.at - b.at >= d - 0.002
    assert "more than 4 restarts in 1m" in fatal[0].reason
    assert len(m.transitions("crash")) == 1 + 4 * 2 + 1  # start, 4x (BACKOFF, STARTING), FATAL
    assert "crashing with 3" in m.text(m.logs / "crash.log")
    assert m.stop() == 0


def test_backoff_delay_capped_at_max(master):
    m = master(HEAD + f"""
    [bots.crash]
    cmd = {toml_argv(bot("crasher"))}
    backoff = {{ initial = "50ms", factor = 3.0, max = "120ms", jitter = 0.0 }}
    restart_limit = {{ count = 3, window = "1m" }}
    start_grace = "10s"  # never RUNNING (which would reset the exponent), however slow a Python start is
    """)
    m.wait_transition("crash", "FATAL")
    delays = [float(re.search(r"in ([\d.]+)s", t.reason).group(1)) for t in m.transitions("crash") if t.new == "BACKOFF"]
    assert delays == [0.05, 0.12, 0.12]
    assert m.stop() == 0


@pytest.mark.parametrize("policy, code, after", [
    ("always", 0, "BACKOFF"), ("always", 3, "BACKOFF"),
    ("on-failure", 0, "EXITED"), ("on-failure", 3, "BACKOFF"),
    ("never", 0, "EXITED"), ("never", 3, "EXITED"),
])
def test_running_to_exited_or_backoff_by_restart_policy(master, policy, code, after):
    m = master(HEAD + f"""
    [bots.b]
    cmd = {toml_argv(bot("sleeper", 0.4, code))}
    restart = "{policy}"
    """)
    m.wait_transition("b", "RUNNING")
    (t,) = m.wait_transition("b", after)
    assert t.old == "RUNNING"
    assert f"code {code}" in t.reason
    if after == "BACKOFF":
        m.wait_transition("b", "RUNNING", count=2)  # and it really came back
    else:
        assert f"restart = {policy}" in t.reason
    assert m.stop() == 0


def test_success_codes_count_as_clean_exit(master):
    m = master(HEAD + f"""
    [bots.b]
    cmd = {toml_argv(bot("sleeper", 0.4, 7))}
    success_codes = [0, 7]
    """)
    (t,) = m.wait_transition("b", "EXITED")
    assert "code 7" in t.reason
    assert m.stop() == 0


def test_spawn_failure_is_a_failed_start(master):
    m = master(HEAD + """
    [bots.ghost]
    cmd = ["/nonexistent/ghost-bot"]
    restart_limit = { count = 2, window = "1m" }
    """)
    (t,) = m.wait_transition("ghost", "FATAL")
    assert "cannot start" in t.reason
    assert m.stop() == 0


def test_restarts_leak_no_file_descriptors(master):
    """Each start opens two pipes and a pidfd; a restart loop must give every one of them back."""
    m = master(HEAD + f"""
    [bots.crash]
    cmd = {toml_argv(bot("crasher"))}
    backoff = {{ initial = "0s" }}
    restart_limit = {{ count = 30, window = "1h" }}
    start_grace = "10s"  # never RUNNING, however slow a Python start is on busy cores
    """)
    m.wait_transition("crash", "FATAL")
    fds = m.ps.num_fds()
    assert "crash:0 FATAL" in m.ctl("start", "crash").stdout  # it waits for the outcome: FATAL again
    m.wait_transition("crash", "FATAL", count=2)
    assert len(m.wait_line(r"crashing with 1", count=62, path=m.logs / "crash.log")) == 62
    assert m.ps.num_fds() == fds
    assert m.stop() == 0


def test_no_zombies_after_restarts(master):
    m = master(HEAD + f"""
    [bots.crash]
    cmd = {toml_argv(bot("crasher"))}
    instances = 3
    backoff = {{ initial = "10ms", factor = 1.0, max = "10ms", jitter = 0.0 }}
    restart_limit = {{ count = 5, window = "1m" }}
    [bots.idle]
    cmd = {toml_argv(bot("sleeper"))}
    """)
    m.wait_transition("crash", "FATAL", count=3)
    m.wait_transition("idle", "RUNNING")
    zombies = [c for c in m.ps.children(recursive=True) if c.status() == psutil.STATUS_ZOMBIE]
    assert zombies == []
    assert len(m.bot_pids()) == 1  # only idle is left
    assert m.stop() == 0
