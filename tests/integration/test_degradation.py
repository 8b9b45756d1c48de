"""Fleet degradation levels from the share of healthy instances: computed on every change, in the log, retained on
the bus, in `supctl status`, /health, /metrics and client.degradation(). Real processes killed one by one."""

from __future__ import annotations

import json
import os
import re
import signal

import httpx
from harness import Master, bot
from http_helpers import HTTP, base_url

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
