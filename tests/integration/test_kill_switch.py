"""The kill switch against a real master: announced on the bus before the stop, refuses every start, survives a
master restart, shown in status, /health and /metrics."""

from __future__ import annotations

import json
import re
import stat

import httpx
from harness import bot, toml_argv
from http_helpers import HTTP, auth, base_url, sse_events

FLEET = f'''
[supervisor]
state_dir = "state"
{HTTP}
[bots.trader]
cmd = {toml_argv(bot("trader"))}
start_grace = "200ms"

[bots.crashy]
cmd = {toml_argv(bot("crasher"))}
start_grace = "200ms"
backoff = {{ initial = "50ms", max = "100ms" }}
restart_limit = {{ count = 1000 }}

[bots.feed]
cmd = {toml_argv(bot("sleeper"))}
start_grace = "200ms"
kill_switch = false
'''


def test_kill_switch_stops_holds_and_survives_a_restart(master) -> None:
    m = master(FLEET)
    url = base_url(m)
    trader_log = m.logs / "trader.log"
    m.wait_line(r"^ready$", path=trader_log)
    m.wait_transition("crashy:0", "BACKOFF", count=2)
    on = m.ctl("kill-switch", "on", "--reason", "market halt")
    assert on.returncode == 0, on.stderr
    assert "KILL SWITCH ACTIVE" in on.stdout and "set by cli" in on.stdout
    assert "stopped: trader, crashy" in on.stdout
    lines = m.lines(trader_log)
    heard = next(i for i, line in enumerate(lines) if line.startswith("kill_switch "))
    assert json.loads(lines[heard].removeprefix("kill_switch "))["reason"] == "market halt"
    assert heard < lines.index("sigterm"), "the bus message must reach the bot before its stop signal"
    states = {r["bot"]: r["state"] for r in json.loads(m.ctl("status", "--json").stdout)["instances"]}
    assert states == {"trader": "STOPPED", "crashy": "STOPPED", "feed": "RUNNING"}
    restarts = len(m.transitions("crashy:0"))

    refused = m.ctl("start", "trader")
    assert refused.returncode == 1 and "kill switch active" in refused.stdout and "market halt" in refused.stdout
    assert m.ctl("restart", "all").returncode == 1
    assert httpx.post(f"{url}/bots/crashy/restart", headers=auth(m), timeout=30).status_code == 409
    m.procfile.write_text(m.procfile.read_text().replace('cmd = ' + toml_argv(bot("crasher")),
                                                         'cmd = ' + toml_argv(bot("crasher", 3))))
    assert "restarted: crashy" in m.ctl("reload").stdout
    m.wait_line(r"crashy: not started \(autostart\): kill switch active")
    assert len(m.transitions("crashy:0")) == restarts, "nothing may start a held bot"

    assert "KILL SWITCH ACTIVE" in m.ctl("status").stdout
    [mine] = [r for r in json.loads(m.ctl("ls", "--json").stdout) if r["procfile"] == str(m.procfile.resolve())]
    assert mine["kill_switch"] == "market halt (cli)"
    health = httpx.get(f"{url}/health")
    assert health.status_code == 503 and health.json()["kill_switch"]["by"] == "cli"
    assert "kill switch active" in health.json()["problems"][0]["reason"]
    metrics = httpx.get(f"{url}/metrics").text
    assert re.search(r"^supctl_kill_switch_active 1\.0$", metrics, re.M)
    assert re.search(r'^supctl_kill_switch_info\{active="true",by="cli",reason="market halt"\} 1\.0$', metrics, re.M)
    saved = m.state_dir / "kill_switch.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600

    m.stop()
    trader_before = len(m.transitions("trader:0"))
    again = master(FLEET)
    url = base_url(again, nth=2)
    again.wait_transition("feed:0", "RUNNING")
    again.wait_line(r"trader: not started \(autostart\): kill switch active since .* \(set by cli: market halt\)")
    assert httpx.get(f"{url}/kill-switch").json()["active"] is True
    assert len(again.transitions("trader:0")) == trader_before
    off = httpx.post(f"{url}/kill-switch", headers=auth(again), json={"activate": False})
    assert off.status_code == 200 and off.json()["state"]["active"] is False
    assert off.json()["state"]["by"] == "http 127.0.0.1"
    assert again.ctl("start", "trader").returncode == 0
    again.wait_line(r'^kill_switch .*"active": ?false', path=trader_log)
    assert "kill switch off" in again.ctl("kill-switch", "status").stdout
    assert again.ctl("kill-switch", "on").returncode == 2
    again.stop()


def test_http_kill_switch_stops_the_bots(master) -> None:
    m = master(FLEET)
    url = base_url(m)
    m.wait_transition("trader:0", "RUNNING")
    with httpx.stream("GET", f"{url}/events", timeout=30) as events:
        lines = events.iter_lines()
        assert next(lines) == "retry: 1000" and next(lines) == ": connected"
        r = httpx.post(f"{url}/kill-switch", headers=auth(m), json={"activate": True, "reason": "flash crash"}, timeout=30)
        assert r.status_code == 200, r.text
        heard = sse_events(lines, lambda kind, data: kind == "kill_switch")
    assert heard["active"] is True and heard["reason"] == "flash crash" and heard["by"] == "http 127.0.0.1"
    assert r.json()["stopped"] == ["trader", "crashy"] and r.json()["state"]["reason"] == "flash crash"
    shown = json.loads(m.ctl("kill-switch", "status", "--json").stdout)
    assert shown["active"] is True and shown["by"] == "http 127.0.0.1"
    m.ctl("kill-switch", "off")


def test_a_bot_with_permission_sets_the_kill_switch_over_the_bus(master) -> None:
    """risk may publish the set topic; opener has open permissions (it may activate, not release; it uses the blocking
    client); intern may only publish orders.>. A set by a bot is recorded as bus:BOT:K and stops the held bots after
    the reply."""
    m = master(f'''
        [supervisor]
        state_dir = "state"
        {HTTP}
        [bots.trader]
        cmd = {toml_argv(bot("trader"))}
        start_grace = "200ms"
        [bots.risk]
        cmd = {toml_argv(bot("risk"))}
        kill_switch = false
        bus = {{ publish = ["supctl.kill_switch.set"] }}
        [bots.opener]
        cmd = {toml_argv(bot("risk", "blocking"))}
        kill_switch = false
        [bots.intern]
        cmd = {toml_argv(bot("risk"))}
        kill_switch = false
        bus = {{ publish = ["orders.>"] }}
    ''')
    url = base_url(m)
    for name in ("trader", "risk", "opener", "intern"):
        m.wait_line(r"^ready$", path=m.logs / f"{name}.log")

    def ask(name: str, body: dict, count: int = 1) -> str:
        """The bot's `count`th answer line: 'reply JSON' or 'refused ERROR'."""
        assert m.ctl("bus", "pub", f"risk.{name}", json.dumps(body)).returncode == 0
        return m.wait_line(r"^(reply|refused) ", path=m.logs / f"{name}.log", count=count, timeout=30)[-1].string

    refused = ask("intern", {"activate": True, "reason": "not mine to pull"})
    assert refused.startswith("refused") and "may not publish to 'supctl.kill_switch.set'" in refused
    assert httpx.get(f"{url}/kill-switch").json()["active"] is False
    empty = ask("risk", {"activate": True, "reason": "  "})
    assert empty.startswith("refused") and "needs a reason" in empty

    pulled = ask("risk", {"activate": True, "reason": "drawdown over 5%"}, count=2)
    state = json.loads(pulled.removeprefix("reply "))
    assert state["active"] is True and state["by"] == "bus:risk:0" and state["stopping"] == ["trader"]
    m.wait_transition("trader:0", "STOPPED")
    lines = m.lines(m.logs / "trader.log")
    heard = next(i for i, line in enumerate(lines) if line.startswith("kill_switch "))
    assert json.loads(lines[heard].removeprefix("kill_switch "))["by"] == "bus:risk:0"
    assert heard < lines.index("sigterm"), "the bus message must reach the bot before its stop signal"
    shown = json.loads(m.ctl("kill-switch", "status", "--json").stdout)
    assert shown["active"] is True and shown["by"] == "bus:risk:0" and shown["reason"] == "drawdown over 5%"
    assert httpx.get(f"{url}/health").json()["kill_switch"]["by"] == "bus:risk:0"

    kept = ask("opener", {"activate": False})
    assert kept.startswith("refused") and "may activate the kill switch, not release it" in kept
    assert httpx.get(f"{url}/kill-switch").json()["active"] is True
    released = json.loads(ask("risk", {"activate": False}, count=3).removeprefix("reply "))
    assert released["active"] is False and released["stopping"] == []
    again = json.loads(ask("opener", {"activate": True, "reason": "opener saw a gap"}, count=2).removeprefix("reply "))
    assert again["active"] is True and again["by"] == "bus:opener:0"
    m.ctl("kill-switch", "off")
