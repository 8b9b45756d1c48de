"""Health checks, recoveries, readiness and event hooks inside a real master with real children."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from harness import RECORDER, SUPCTL, bot, free_port, parse_time, wait_until

PLUGINS = '''
import asyncio
from supervisor.plugin import CheckContext, HealthCheck, Result


class Explodes(HealthCheck):
    name = "explodes"

    async def check(self, ctx: CheckContext) -> Result:
        raise RuntimeError("kaboom from the plugin")


class Hangs(HealthCheck):
    name = "hangs"

    async def check(self, ctx: CheckContext) -> Result:
        await asyncio.sleep(3600)
        return Result.ok()
'''


def test_memory_leak_is_restarted_by_the_memory_check(master) -> None:
    m = master(f'''
        [supervisor]
        state_dir = "state"
        [bots.leaker]
        cmd = {bot("leaker")}
        start_grace = "100ms"
        [[bots.leaker.health]]
        check = "memory"
        max_rss = "60MB"
        every = "100ms"
        failures = 1
        recover = "restart"
    ''')
    stopping = m.wait_transition("leaker:0", "STOPPING")[0]
    assert re.fullmatch(r"health: memory: rss [\d.]+MiB > max 57.2MiB", stopping.reason), stopping
    m.wait_transition("leaker:0", "RUNNING", count=2)
    report = m.ctl("health", "leaker")
    assert report.returncode == 0 and "memory" in report.stdout and "FAIL" in report.stdout


def test_bus_heartbeat_is_per_instance(master) -> None:
    """Two instances of one bot publish on one topic: the silent one is unhealthy, not hidden by the other's beats."""
    beat = ("import asyncio, os\nfrom supervisor.bus import connect\nasync def main():\n    bus = await connect()\n"
            "    while os.environ['SUPCTL_INSTANCE'] == '0':\n        await bus.publish('beat', 1)\n"
            "        await asyncio.sleep(0.1)\n    await asyncio.Event().wait()\nasyncio.run(main())\n")
    m = master(f'''
        [supervisor]
        state_dir = "state"
        [bots.pool]
        cmd = {json.dumps([sys.executable, "-c", beat])}
        instances = 2
        start_grace = "0s"
        [[bots.pool.health]]
        check = "bus_heartbeat"
        topic = "beat"
        within = "5s"
        every = "200ms"
    ''')
    beating = m.wait_line(r"pool:0 health healthy", timeout=30)[0].string
    since = parse_time(" ".join(beating.split()[:2])) + 1  # log stamps have milliseconds; a second of margin

    def checked_since() -> list[dict]:
        rows = json.loads(m.ctl("health", "pool", "--json").stdout)
        return [r for row in rows if row["instance"] == 1 for r in row["records"] if r["kind"] == "check" and r["time"] > since]

    later = wait_until(checked_since, 30, "a check of pool:1 while pool:0 beats")
    assert all(not r["ok"] and r["reason"] == "nothing published on beat yet" for r in later), later
    assert "pool:1 health healthy" not in m.text()


def test_plugin_that_raises_or_hangs_is_contained(master, tmp_path: Path) -> None:
    (tmp_path / "myplugins.py").write_text(textwrap.dedent(PLUGINS))
    m = master(f'''
        [supervisor]
        state_dir = "state"
        plugin_paths = ["myplugins.py"]
        [bots.app]
        cmd = {bot("sleeper")}
        start_grace = "100ms"
        [[bots.app.health]]
        check = "explodes"
        every = "100ms"
        failures = 100
        [[bots.app.health]]
        check = "hangs"
        every = "100ms"
        timeout = "200ms"
        failures = 100
    ''')
    m.wait_line(r"app:0 health unhealthy: .*kaboom from the plugin")

    def both_failures_reported() -> str | None:
        out = m.ctl("health", "app").stdout
        return out if "kaboom from the plugin" in out and "timed out after 0.2s" in out else None

    report = wait_until(both_failures_reported, 15, "both plugin failures in supctl health")
    status = json.loads(m.ctl("status", "--json").stdout)["instances"]
    assert status[0]["state"] == "RUNNING" and status[0]["health"]["state"] == "unhealthy"
    assert "RuntimeError" in str(report)


def test_dependent_waits_until_dependency_is_healthy(master) -> None:
    port = free_port()
    m = master(f'''
        [supervisor]
        state_dir = "state"
        [bots.api]
        cmd = {bot("late_server", port, 1.0)}
        start_grace = "100ms"
        [[bots.api.health]]
        check = "tcp"
        port = {port}
        every = "100ms"
        failures = 100
        [bots.worker]
        cmd = {bot("sleeper")}
        start_grace = "100ms"
        depends_on = ["api"]
    ''')
    m.wait_transition("worker:0", "RUNNING")
    healthy = next(i for i, e in m.events("api:0") if e.health == "healthy")
    started = next(t.line for t in m.transitions("worker:0") if (t.old, t.new) == ("STOPPED", "STARTING"))
    api_running = next(t.line for t in m.transitions("api:0") if (t.old, t.new) == ("STARTING", "RUNNING"))
    assert api_running < healthy < started


def test_dependency_never_healthy_leaves_dependent_not_started(master) -> None:
    m = master(f'''
        [supervisor]
        state_dir = "state"
        [bots.api]
        cmd = {bot("sleeper")}
        start_grace = "100ms"
        [[bots.api.health]]
        check = "tcp"
        port = {free_port()}
        every = "100ms"
        failures = 100
        [bots.worker]
        cmd = {bot("sleeper")}
        depends_on = ["api"]
        start_timeout = "1s"
    ''')
    m.wait_line(r"worker not started: api not healthy within start_timeout 1s")
    rows = {r["bot"]: r for r in json.loads(m.ctl("status", "--json").stdout)["instances"]}
    assert rows["worker"]["state"] == "STOPPED"
    assert rows["worker"]["health"]["state"] == "waiting"
    assert rows["worker"]["health"]["reason"] == "not started: api not healthy within start_timeout 1s"


def test_event_hooks_hear_transitions_and_health(master, tmp_path: Path) -> None:
    (tmp_path / "myplugins.py").write_text(textwrap.dedent(PLUGINS))
    events = tmp_path / "events.jsonl"
    m = master(f'''
        [supervisor]
        state_dir = "state"
        plugin_paths = ["myplugins.py", "{RECORDER}"]
        [[supervisor.hooks]]
        hook = "recorder"
        path = "{events}"
        [bots.crash]
        cmd = ["sh", "-c", "sleep 0.3; exit 3"]
        start_grace = "100ms"
        restart_limit = {{ count = 1, window = "1m" }}
        backoff = {{ initial = "50ms" }}
        [[bots.crash.health]]
        check = "explodes"
        every = "100ms"
    ''')
    m.wait_transition("crash:0", "FATAL")

    def recorded() -> list[dict] | None:
        got = [json.loads(line) for line in events.read_text().splitlines()] if events.exists() else []
        kinds = [e["kind"] for e in got]
        return got if {"started", "exited", "backoff", "fatal", "health_changed"} <= set(kinds) else None

    got = wait_until(recorded, 15, "hook events")
    assert any(e["kind"] == "exited" and e["exit_code"] == 3 for e in got)
    assert any(e["kind"] == "health_changed" and e["health"] == "unhealthy" for e in got)


def test_reload_replaces_the_event_hooks(master, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    head = f'[supervisor]\nstate_dir = "state"\nplugin_paths = ["{RECORDER}"]\n'
    app = f'[bots.app]\ncmd = {bot("sleeper")}\nstart_grace = "100ms"\n'
    m = master(head + app)
    m.wait_transition("app:0", "RUNNING")
    (tmp_path / "procfile.toml").write_text(head + f'[[supervisor.hooks]]\nhook = "recorder"\npath = "{events}"\n' + app)
    out = m.ctl("reload").stdout
    assert "kept:      app" in out and "restart the master" not in out
    m.wait_line(r"reload: event hooks replaced \(1 now\)")
    assert m.ctl("restart", "app").returncode == 0

    def heard() -> list[str] | None:
        kinds = [json.loads(line)["kind"] for line in events.read_text().splitlines()] if events.exists() else []
        return kinds if "started" in kinds else None

    assert "stopped" in wait_until(heard, 15, "the new hook hearing the restart")


def test_validate_names_a_bad_plugin_option(tmp_path: Path) -> None:
    procfile = tmp_path / "procfile.toml"
    procfile.write_text('[bots.api]\ncmd = "true"\n[[bots.api.health]]\ncheck = "http"\nurl = "ftp://x"\n'
                        '[[bots.api.health]]\ncheck = "htp"\n')
    out = subprocess.run([*SUPCTL, "validate", str(procfile)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "bots.api.health[0].url" in out.stderr
    assert "bots.api.health[1].check" in out.stderr and "did you mean 'http'" in out.stderr
