"""Fleet degradation levels from the share of healthy instances: computed on every change, in the log, retained on
the bus, in `supctl status`, /health, /metrics and client.degradation(). Real processes killed one by one."""

from __future__ import annotations

import json
import os
import re
import signal

import httpx
from harness import Master, bot
from http_helpers import HTTP, base_url, sse_events

PROCFILE = f'''
    [supervisor]
    state_dir = "state"
    [fleet.degradation]
    reduced = 0.7
    minimal = 0.4
    emergency = 0.2
    [bots.agent]
    cmd = {bot("sleeper")}
    instances = 5
    restart = "never"
    start_grace = "0s"
    [bots.watcher]
    cmd = {bot("level_watcher")}
    depends_on = ["agent"]
    start_grace = "0s"
''' + HTTP


def kill(m: Master, k: int) -> None:
    pid = next(r["pid"] for r in json.loads(m.ctl("status", "--json").stdout)["instances"] if r["bot"] == "agent" and r["instance"] == k)
    os.kill(pid, signal.SIGKILL)
    m.wait_transition(f"agent:{k}", "EXITED")


def levels(m: Master, count: int) -> list[dict]:
    return [json.loads(x.group(1)) for x in m.wait_line(r"^level (.*)$", count=count, path=m.logs / "watcher.log")]


def test_levels_follow_the_share_of_healthy_instances(master) -> None:
    m = master(PROCFILE)
    url = base_url(m)
    now = json.loads(m.wait_line(r"^now (.*)$", path=m.logs / "watcher.log")[0].group(1))
    assert now["level"] == "normal" and now["healthy"] == now["total"] >= 5
    assert "fleet degradation: normal" in m.ctl("status").stdout

    kill(m, 0)
    kill(m, 1)  # 4 of 6 healthy: 0.67 < 0.7
    m.wait_line(r"WARNING fleet degradation reduced: 4 of 6 instances healthy \(67%\) \(was normal\)")
    assert levels(m, 1)[-1]["level"] == "reduced"
    assert re.search(r"fleet degradation: reduced for \S+ \(4 of 6 instances healthy, 67%\)", m.ctl("status").stdout)
    health = httpx.get(f"{url}/health").json()
    assert health["degradation"]["level"] == "reduced" and health["degradation"]["healthy"] == 4
    metrics = httpx.get(f"{url}/metrics").text
    assert re.search(r"^supctl_fleet_degradation_level 1\.0$", metrics, re.M)

    kill(m, 2)  # 3 of 6: 0.5, still reduced
    kill(m, 3)  # 2 of 6: 0.33 < 0.4
    assert levels(m, 2)[-1] == {**levels(m, 2)[-1], "level": "minimal", "healthy": 2, "total": 6}
    kill(m, 4)  # 1 of 6: 0.17 < 0.2
    assert levels(m, 3)[-1]["level"] == "emergency"
    assert re.search(r"^supctl_fleet_degradation_level 3\.0$", httpx.get(f"{url}/metrics").text, re.M)
    assert [x["level"] for x in levels(m, 3)] == ["reduced", "minimal", "emergency"], "one message per level change"


GROUPS = f'''
    [supervisor]
    state_dir = "state"
    [fleet.degradation]
    reduced = 0.5
    [fleet.degradation.groups.agents]
    bots = ["agent"]
    reduced = 0.7
    minimal = 0.5
    emergency = 0.2
    [bots.agent]
    cmd = {bot("sleeper")}
    instances = 3
    restart = "never"
    start_grace = "0s"
    [bots.feed]
    cmd = {bot("sleeper")}
    instances = 3
    start_grace = "0s"
    [bots.watcher]
    cmd = {bot("level_watcher", "agents")}
    depends_on = ["agent", "feed"]
    start_grace = "0s"
''' + HTTP


def test_a_group_has_its_own_level_next_to_the_fleets(master) -> None:
    m = master(GROUPS)
    url = base_url(m)
    now = json.loads(m.wait_line(r"^now (.*)$", path=m.logs / "watcher.log")[0].group(1))
    assert (now["group"], now["level"], now["total"]) == ("agents", "normal", 3), "client.degradation(group=...)"
    m.wait_transition("watcher", "RUNNING")
    with httpx.stream("GET", f"{url}/events", timeout=30) as r:
        lines = r.iter_lines()
        assert next(lines) == "retry: 1000" and next(lines) == ": connected"
        kill(m, 0)  # agents 2 of 3 (0.67 < 0.7): reduced; the fleet 6 of 7 stays normal
        event = sse_events(lines, lambda k, d: k == "degradation")
    assert (event["group"], event["level"], event["healthy"], event["total"]) == ("agents", "reduced", 2, 3)
    m.wait_line(r"WARNING group agents degradation reduced: 2 of 3 instances healthy \(67%\) \(was normal\)")
    assert (levels(m, 1)[0]["group"], levels(m, 1)[0]["level"]) == ("agents", "reduced"), "retained on its own topic"
    status = json.loads(m.ctl("status", "--json").stdout)["degradation"]
    assert status["level"] == "normal" and [(g["group"], g["level"], g["healthy"]) for g in status["groups"]] == \
        [("agents", "reduced", 2)]
    text = m.ctl("status").stdout
    assert "fleet degradation: normal" in text and re.search(r"group agents degradation: reduced for \S+ \(2 of 3", text)
    health = httpx.get(f"{url}/health").json()["degradation"]
    assert health["level"] == "normal" and health["groups"][0]["level"] == "reduced"
    metrics = httpx.get(f"{url}/metrics").text
    assert re.search(r"^supctl_fleet_degradation_level 0\.0$", metrics, re.M)
    assert re.search(r'^supctl_group_degradation_level\{group="agents"\} 1\.0$', metrics, re.M)
    assert re.search(r'^supctl_group_healthy_share\{group="agents"\} 0\.66', metrics, re.M)

    kill(m, 1)  # agents 1 of 3 (0.33 < 0.5): minimal; the fleet 5 of 7 (0.71) still normal
    assert [x["level"] for x in levels(m, 2)] == ["reduced", "minimal"]
    assert "fleet degradation" not in m.text().split("group agents degradation reduced")[1], "the fleet never changed"
