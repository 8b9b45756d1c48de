"""Health belongs to one process, start periods, counted health restarts, DEGRADED that stays, warn-only checks.

Real masters with real children; every wait follows a reply or a file with a deadline.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
from harness import RECORDER, SUPCTL, Master, as_text, bot, free_port, parse_time, wait_until
from http_helpers import HTTP, base_url


def hooked(events: Path) -> str:
    """A [supervisor] table whose event hook writes every event to `events` as JSON lines."""
    return f'''
        [supervisor]
        state_dir = "state"
        plugin_paths = ["{RECORDER}"]
        [[supervisor.hooks]]
        hook = "recorder"
        path = "{events}"
    '''


def recorded(events: Path, bot_name: str, kind: str | None = None) -> list[dict]:
    got = [json.loads(line) for line in events.read_text().splitlines()] if events.exists() else []
    return [e for e in got if e["bot"] == bot_name and (kind is None or e["kind"] == kind)]


def row(m: Master, name: str) -> dict:
    return next(as_text(r) for r in json.loads(m.ctl("status", "--json").stdout)["instances"] if r["bot"] == name)


def health_records(m: Master, name: str) -> list[dict]:
    return json.loads(m.ctl("health", name, "--json").stdout)[0]["records"]


def wait_row(m: Master, name: str, ok, what: str, timeout: float = 15) -> dict:
    """Until the status row of `name` satisfies `ok`; returns that row."""

    def check() -> dict | None:
        r = row(m, name)
        return r if ok(r) else None

    return wait_until(check, timeout, what)  # type: ignore[return-value]


def wait_health(m: Master, name: str, prefix: str, timeout: float = 15) -> dict:
    return wait_row(m, name, lambda r: (r["health"] or "").startswith(prefix), f"{name} health {prefix!r}", timeout)


def test_restarted_bot_is_starting_until_its_first_check(master, tmp_path: Path) -> None:
    port, gate, events = free_port(), tmp_path / "gate", tmp_path / "events.jsonl"
    gate.touch()
    m = master(hooked(events) + f'''
        [bots.app]
        cmd = {bot("gated_server", port, gate)}
        start_grace = "100ms"
        [[bots.app.health]]
        check = "tcp"
        port = {port}
        every = "100ms"
        start_period = "1m"
        failures = 100
        [bots.worker]
        cmd = {bot("sleeper")}
        start_grace = "100ms"
        depends_on = ["app"]
    ''')
    m.wait_transition("worker:0", "RUNNING")
    first = wait_health(m, "app", "healthy")
    gate.unlink()  # the next process will not listen until the test says so
    assert m.ctl("restart", "app").returncode == 0
    now = row(m, "app")
    assert now["pid"] != first["pid"] and now["state"] == "RUNNING"
    assert now["health"].startswith("starting"), now["health"]  # never the old process's "healthy"
    restart = subprocess.Popen([*SUPCTL, "restart", "worker"], env=m.env(), stdout=subprocess.DEVNULL)
    try:
        blocked = wait_row(m, "worker", lambda r: r["state"] == "STOPPED" and r["health"], "worker waiting")
        assert "waiting for app to pass health checks" in blocked["health"], blocked
        gate.touch()
        wait_health(m, "app", "healthy")
        m.wait_transition("worker:0", "RUNNING", count=2)
    finally:
        restart.wait(30)
    new_pid = now["pid"]
    mine = [e["health"] for e in recorded(events, "app", "health_changed") if e["pid"] == new_pid]
    assert mine[0] == "starting" and mine[-1] == "healthy" and mine.count("healthy") == 1, mine
    healthy_at = next(i for i, e in m.events("app:0") if e.health == "healthy" and i > m.transitions("app:0")[-1].line)
    assert healthy_at < m.transitions("worker:0")[-2].line  # worker:0 STOPPED -> STARTING came after the new pass


def test_first_check_runs_right_after_spawn(master) -> None:
    m = master(f'''
        [supervisor]
        state_dir = "state"
        [bots.api]
        cmd = {bot("sleeper")}
        start_grace = "100ms"
        [[bots.api.health]]
        check = "exec"
        cmd = ["true"]
        every = "1h"
        [bots.worker]
        cmd = {bot("sleeper")}
        start_grace = "100ms"
        depends_on = ["api"]
        start_timeout = "30s"
    ''')
    m.wait_transition("worker:0", "RUNNING", timeout=20)  # an `every` of 1h would have kept it waiting
    assert row(m, "api")["health"] == "healthy"
    assert len([r for r in health_records(m, "api") if r["kind"] == "check"]) == 1


def test_start_period_failures_do_not_count(master, tmp_path: Path) -> None:
    port, gate = free_port(), tmp_path / "gate"
    m = master(f'''
        [supervisor]
        state_dir = "state"
        [bots.app]
        cmd = {bot("gated_server", port, gate)}
        start_grace = "100ms"
        [[bots.app.health]]
        check = "tcp"
        port = {port}
        every = "100ms"
        failures = 2
        start_period = "1m"
        recover = "restart"
    ''')
    m.wait_transition("app:0", "RUNNING")
    booting = wait_until(lambda: [r for r in health_records(m, "app") if not r["ok"]][4:] and health_records(m, "app"),
                         20, "five failed checks while booting")
    assert all(e["kind"] == "check" for e in booting)  # no recovery ran
    during = row(m, "app")
    assert during["restarts"] == 0 and "in start_period 60s" in during["health"], during
    gate.touch()
    wait_health(m, "app", "healthy")
    assert row(m, "app")["pid"] == during["pid"]
    gate.unlink()  # after the first pass, failures count: two in a row restart it
    m.wait_transition("app:0", "STOPPING")
    restarted = wait_row(m, "app", lambda r: r["restarts"] == 1, "one counted restart")
    assert "health: tcp: connect" in restarted["last_exit"]


def test_health_restarts_spend_the_restart_budget(master, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    m = master(hooked(events) + f'''
        [bots.leaker]
        cmd = {bot("leaker")}
        start_grace = "100ms"
        backoff = {{ initial = "50ms" }}
        restart_limit = {{ count = 2, window = "5m" }}
        [[bots.leaker.health]]
        check = "memory"
        max_rss = "60MB"
        every = "100ms"
        failures = 1
        recover = "restart"
    ''')
    fatal = m.wait_transition("leaker:0", "FATAL", timeout=30)[0]
    assert "health: memory: rss" in fatal.reason and "more than 2 restarts in 5m" in fatal.reason, fatal.reason
    status = row(m, "leaker")
    assert status["state"] == "FATAL" and status["restarts"] == 2
    assert "health: memory: rss" in status["last_exit"]
    table = m.ctl("status").stdout.splitlines()
    assert table[0].split()[5] == "RESTARTS" and table[1].split()[5] == "2"

    def heard() -> list[dict] | None:
        got = recorded(events, "leaker")
        return got if any(e["kind"] == "fatal" for e in got) else None

    got = wait_until(heard, 15, "the fatal event")
    exits = [e for e in got if e["kind"] == "exited"]  # type: ignore[union-attr]
    assert len(exits) == 3 and all("health: memory: rss" in e["reason"] for e in exits)
    assert "health: memory: rss" in next(e for e in got if e["kind"] == "fatal")["reason"]  # type: ignore[union-attr]
    m.ctl("restart", "leaker")  # a person's restart spends nothing: it resets the budget, and says so
    m.wait_line(r"leaker:0: restart budget reset \(2 of 2 used\): restart requested")


def breaker_bot(check: list[str], cooldown: str, cmd: list[str]) -> str:
    return f'''
        [bots.app]
        cmd = {cmd}
        start_grace = "100ms"
        backoff = {{ initial = "50ms" }}
        [[bots.app.health]]
        check = "exec"
        cmd = {json.dumps(check)}
        every = "100ms"
        failures = 1
        recover = {{ name = "circuit_breaker", recover = "restart", max = 1, window = "1m", cooldown = "{cooldown}" }}
    '''


def test_degraded_stays_while_the_breaker_is_open(master, tmp_path: Path) -> None:
    bad, events = tmp_path / "bad", tmp_path / "events.jsonl"
    bad.touch()
    m = master(hooked(events) + breaker_bot(["test", "!", "-e", str(bad)], "1h", bot("sleeper")))
    degraded = wait_health(m, "app", "DEGRADED: circuit breaker open")
    assert degraded["restarts"] == 1  # one restart inside max = 1, then the circuit opened

    def skipped() -> list[dict] | None:
        got = [r for r in health_records(m, "app") if r["kind"] == "recovery" and r["skipped"]]
        return got if any(r["reason"].startswith("circuit open, recovery skipped") for r in got) else None

    assert wait_until(skipped, 15, "a recovery skipped while open")[0]["reason"].startswith(  # type: ignore[index]
        "circuit opened after 1 recoveries within 60s")
    report = m.ctl("health", "app").stdout
    assert "skipped" in report and "circuit open, recovery skipped" in report and report.startswith("app:0  DEGRADED")
    bad.unlink()

    def passing() -> list[dict] | None:
        checks = [r for r in health_records(m, "app") if r["kind"] == "check"]
        return checks if len(checks) >= 3 and all(r["ok"] for r in checks[-3:]) else None

    wait_until(passing, 15, "three passing checks")
    still = row(m, "app")
    assert still["health"].startswith("DEGRADED: circuit breaker open"), still["health"]
    assert still["restarts"] == 1
    kinds = [e["health"] for e in recorded(events, "app", "health_changed")]
    assert "degraded" in kinds and kinds[-1] == "degraded", kinds


def test_degraded_clears_only_when_the_circuit_closes(master, tmp_path: Path) -> None:
    bad, events = tmp_path / "bad", tmp_path / "events.jsonl"
    bad.touch()
    m = master(hooked(events) + breaker_bot(["test", "!", "-e", str(bad)], "2s", bot("sleeper")))
    opened = m.wait_line(r"^(\S+ \S+) .*app:0 marked DEGRADED: circuit breaker open")[0]
    bad.unlink()  # from now on the checks pass; the circuit stays open for its cooldown all the same
    closed = m.wait_line(r"^(\S+ \S+) .*app:0 no longer DEGRADED: circuit breaker closed")[0]
    assert parse_time(closed[1]) - parse_time(opened[1]) >= 2.0 - 0.001  # log stamps have ms resolution
    assert row(m, "app")["health"] == "healthy"
    kinds = [e["health"] for e in recorded(events, "app", "health_changed")]
    assert kinds.index("degraded") < len(kinds) - 1 and kinds[-1] == "healthy", kinds


def test_warn_check_never_recovers(master, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    m = master(hooked(events) + HTTP + f'''
        [bots.app]
        cmd = {bot("sleeper")}
        start_grace = "100ms"
        [[bots.app.health]]
        check = "exec"
        cmd = ["sh", "-c", "echo disk 95% full; exit 1"]
        severity = "warn"
        every = "100ms"
        failures = 1
        [bots.worker]
        cmd = {bot("sleeper")}
        start_grace = "100ms"
        depends_on = ["app"]
    ''')
    m.wait_transition("worker:0", "RUNNING")  # a failing warn check does not hold dependents back
    first = row(m, "app")
    wait_until(lambda: sum(not r["ok"] for r in health_records(m, "app")) >= 5, 15, "five failed warn checks")
    now = row(m, "app")
    assert now["health"] == "healthy: warn: exec: exit 1: disk 95% full", now["health"]
    assert now["restarts"] == 0 and now["pid"] == first["pid"]
    assert all(r["kind"] == "check" for r in health_records(m, "app"))
    changes = recorded(events, "app", "health_changed")
    assert changes[-1]["health"] == "healthy" and changes[-1]["warnings"] == ["exec: exit 1: disk 95% full"]
    metrics = httpx.get(f"{base_url(m)}/metrics").text
    assert [line for line in metrics.splitlines() if line.startswith("supctl_check_healthy")] == [
        'supctl_check_healthy{bot="app",check="exec",instance="0"} 0.0']


def test_a_warn_check_with_a_recovery_is_rejected(tmp_path: Path) -> None:
    procfile = tmp_path / "procfile.toml"
    procfile.write_text('[bots.api]\ncmd = "true"\n[[bots.api.health]]\ncheck = "tcp"\nport = 1\nseverity = "warn"\n'
                        'recover = "restart"\n[[bots.api.health]]\ncheck = "tcp"\nport = 1\nseverity = "loud"\n')
    out = subprocess.run([*SUPCTL, "validate", str(procfile)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert 'bots.api.health[0].recover: a check with severity = "warn" only reports; it never recovers' in out.stderr
    assert "bots.api.health[1].severity" in out.stderr


def test_restart_dependents_is_a_counted_restart_of_each_dependent(master, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    m = master(f'''
        [supervisor]
        state_dir = "state"
        [bots.api]
        cmd = {bot("sleeper")}
        start_grace = "100ms"
        [[bots.api.health]]
        check = "exec"
        cmd = ["test", "!", "-e", "{bad}"]
        every = "100ms"
        failures = 1
        recover = "restart_dependents"
        [bots.worker]
        cmd = {bot("sleeper")}
        start_grace = "100ms"
        backoff = {{ initial = "50ms" }}
        instances = 2
        depends_on = ["api"]
    ''')
    m.wait_transition("worker:1", "RUNNING")
    api_pid = row(m, "api")["pid"]
    bad.touch()
    restarted = wait_row(m, "worker", lambda r: r["restarts"] >= 1, "a counted restart of worker:0")
    bad.unlink()
    assert restarted["last_exit"].endswith("health of api:0: exec: exit 1"), restarted["last_exit"]
    m.wait_transition("worker:1", "BACKOFF")  # every instance of the dependent, each in its own budget
    assert row(m, "api")["pid"] == api_pid and row(m, "api")["restarts"] == 0
