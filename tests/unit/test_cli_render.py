"""How `supctl status` and `describe` read: fits the terminal, colours states, says when BACKOFF tries again."""

from __future__ import annotations

from supervisor.control.protocol import HealthState, InstanceStatus, LastExit
from supervisor.control.render import exit_text, health_text, status_table

LONG = "x" * 300


def rows() -> list[InstanceStatus]:
    return [
        InstanceStatus(bot="api", instance=0, state="RUNNING", pid=10, uptime=5.0, rss=1 << 20, cpu=1.0,
                       health=HealthState(state="unhealthy", reason="http: " + LONG, since=1.0)),
        InstanceStatus(bot="worker", instance=0, state="BACKOFF", restarts=3, next_try_at=112.5,
                       last_exit=LastExit(code=1, signal=None, after_s=2.31, at=100.0, reason="exited before start_grace")),
        InstanceStatus(bot="stubborn", instance=0, state="STOPPED",
                       last_exit=LastExit(code=None, signal="SIGKILL", after_s=12.0, at=100.0, reason="SIGKILL after stop_timeout")),
        InstanceStatus(bot="dead", instance=0, state="FATAL", restarts=10,
                       last_exit=LastExit(code=3, signal=None, after_s=0.2, at=100.0)),
    ]


def test_the_table_fits_the_terminal_and_cuts_long_reasons() -> None:
    text = status_table(rows(), now=110.0, width=100)
    assert all(len(line) <= 100 for line in text.splitlines()), text
    assert "…" in text and LONG not in text
    assert LONG in status_table(rows(), now=110.0)  # without a width (a pipe) nothing is cut


def test_backoff_rows_say_when_the_next_try_is() -> None:
    assert "BACKOFF (next try in 2.5s)" in status_table(rows(), now=110.0)


def test_states_are_coloured_only_when_asked() -> None:
    plain = status_table(rows(), now=110.0)
    assert "\x1b[" not in plain
    coloured = status_table(rows(), now=110.0, colour=True).splitlines()
    assert "\x1b[32mRUNNING\x1b[0m" in coloured[1]
    assert "\x1b[33mBACKOFF" in coloured[2]
    assert "\x1b[31mFATAL\x1b[0m" in coloured[4]
    assert [len(line) for line in plain.splitlines()[1:]] != []


def test_last_exit_and_health_as_people_read_them() -> None:
    r = rows()
    assert exit_text(r[1].last_exit) == "code 1 after 2.31s: exited before start_grace"
    assert exit_text(r[2].last_exit) == "SIGKILL after stop_timeout"
    assert exit_text(None) == "-"
    assert health_text(HealthState(state="degraded", reason="circuit breaker open")) == "DEGRADED: circuit breaker open"
    assert health_text(HealthState(state="healthy", reason="all checks pass")) == "healthy"
    assert health_text(HealthState(state="waiting", reason="waiting for api to be RUNNING")) == "waiting for api to be RUNNING"


def test_a_stop_of_many_instances_is_announced_in_one_line_per_bot() -> None:
    from supervisor.control.protocol import StopWait
    from supervisor.control.render import instance_ranges, wait_lines

    waits = [StopWait(name=f"idle:{k}", signal="TERM", timeout_s=10.0) for k in range(1000)]
    waits += [StopWait(name="web-2:0", signal="SIGINT", timeout_s=1.5), StopWait(name="api:3", signal="TERM", timeout_s=10.0)]
    assert wait_lines(waits) == [
        "idle:0-999 (1000 instances): sending SIGTERM, SIGKILL in 10s if it is still running",
        "web-2:0: sending SIGINT, SIGKILL in 1.5s if it is still running",
        "api:3: sending SIGTERM, SIGKILL in 10s if it is still running",
    ]
    assert instance_ranges([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8" and instance_ranges([4]) == "4"
