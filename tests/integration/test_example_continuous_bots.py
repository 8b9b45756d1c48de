"""examples/continuous-bots: the three bots hear each other's status over the bus, and again from each other's new
processes after a master restart; /health and /status answer; the kill switch makes the trader flatten its paper
positions and nothing restarts until it is released, even across a master restart; a bot that keeps crashing is
restarted 10 times with exponential backoff, then FATAL with "manual intervention" in its reason, until `supctl start`.
Compressed: SYNC_EVERY 5 s -> 0.2 s, backoff initial 1 s -> 10 ms (factor 2, the 60 s cap is never reached); the
HTTP port is the kernel's choice."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
from pathlib import Path

import httpx
import psutil
import pytest
from harness import Master, wait_until
from http_helpers import base_url

ROLES = {"trader": ("freelance", "ai"), "freelance": ("trader", "ai"), "ai": ("trader", "freelance")}

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "continuous-bots"


def procfile(tmp_path: Path) -> str:
    work = tmp_path / "example"
    shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns(".supctl", "__pycache__"))
    text = (work / "procfile.toml").read_text()
    text = text.replace('state_dir = ".supctl"', 'state_dir = "state"').replace('SYNC_EVERY = "5"', 'SYNC_EVERY = "0.2"')
    text = text.replace('listen = "127.0.0.1:8765"', 'listen = "127.0.0.1:0"').replace('initial = "1s"', 'initial = "10ms"')
    assert "0.2" in text and ":0" in text and "10ms" in text
    return text.replace('cmd = ["python3", "', f'cwd = "{work}"\ncmd = ["python3", "')


@pytest.mark.slow
def test_continuous_bots(master, tmp_path: Path) -> None:
    text = procfile(tmp_path)
    m = master(text)
    url = base_url(m)
    for me, others in ROLES.items():
        for other in others:
            m.wait_line(rf"^heard {other} \{{\"role\": \"{other}\"", path=m.logs / f"{me}.log", timeout=30)
    for name in ("trader", "freelance", "ai"):
        m.wait_transition(f"{name}:0", "RUNNING", timeout=30)  # hearing each other can come before start_grace ends
    health = httpx.get(f"{url}/health")
    assert health.status_code == 200, health.text
    assert {r["bot"]: r["state"] for r in httpx.get(f"{url}/status").json()["instances"]} == dict.fromkeys(("trader", "freelance", "ai"), "RUNNING")

    assert m.ctl("kill-switch", "on", "--reason", "market halt").returncode == 0
    m.wait_line(r"^kill switch on: market halt$", path=m.logs / "trader.log")
    flat = m.wait_line(r"^flattened paper positions \(kill switch\): (.*)$", path=m.logs / "trader.log")[0]
    closed = json.loads(flat.group(1))
    assert closed and all(isinstance(v, float) and v for v in closed.values()), "the open paper positions, closed"
    m.wait_line(r"^flattened paper positions \(stop\): ", path=m.logs / "trader.log")  # in its stop grace
    m.wait_transition("trader:0", "STOPPED")
    assert httpx.get(f"{url}/health").status_code == 503
    assert m.stop() == 0

    again = master(text)
    again.wait_line(r"trader: not started \(autostart\): kill switch active")
    assert again.ctl("kill-switch", "off").returncode == 0
    assert again.ctl("start", "all").returncode == 0
    resync(again, running(again))
    assert again.stop() == 0


def running(m: Master) -> dict[str, int]:
    """Each bot's pid once all three are RUNNING under this master (the journal also holds the earlier masters')."""
    since = m.ps.create_time()
    wait_until(lambda: {t.bot for t in m.transitions() if t.at > since and t.new == "RUNNING"} >= set(ROLES), 30,
               "every bot RUNNING under the new master")
    return {r["bot"]: r["pid"] for r in json.loads(m.ctl("status", "--json").stdout)["instances"]}


def ai_worker(m: Master, killed: set[int]) -> int | None:
    """The pid of the ai worker's process now (a new one: not among those already killed)."""
    for p in psutil.Process(m.pid).children():
        try:
            if p.pid not in killed and p.status() != psutil.STATUS_ZOMBIE and p.cmdline()[-2:] == ["worker.py", "ai"]:
                return p.pid
        except psutil.Error:
            continue
    return None


def heard(m: Master, me: str) -> dict[str, set[int]]:
    """The pids in the statuses `me` printed it heard, per other bot."""
    out: dict[str, set[int]] = {}
    for line in m.lines(m.logs / f"{me}.log"):
        if found := re.match(r"^heard (\w+) (\{.*\})$", line):
            out.setdefault(found.group(1), set()).add(json.loads(found.group(2))["pid"])
    return out


def resync(m: Master, pids: dict[str, int]) -> None:
    """Each bot hears the others' statuses from the processes running now (their pids), not from the ones before."""
    for me, others in ROLES.items():
        wait_until(lambda me=me, others=others: all(pids[o] in heard(m, me).get(o, ()) for o in others), 30,
                   f"{me} hearing {others} again")


@pytest.mark.slow
def test_a_crashing_bot_gets_10_tries_of_exponential_backoff_then_fatal_and_the_bus_resyncs(master, tmp_path: Path) -> None:
    """Real crashes: the ai worker's process is SIGKILLed each time it starts, 11 times. Then a master restart: the
    bots are new processes on a new bus, and each hears the others' new statuses."""
    text = procfile(tmp_path)
    m = master(text)
    killed: set[int] = set()
    for n in range(1, 12):
        m.wait_transition("ai:0", "STARTING", count=n, timeout=30)
        pid = wait_until(lambda: ai_worker(m, killed), 30, f"the ai worker's process, start {n}")
        os.kill(pid, signal.SIGKILL)  # type: ignore[arg-type]
        killed.add(pid)  # type: ignore[arg-type]
        m.wait_transition("ai:0", "BACKOFF" if n <= 10 else "FATAL", count=n if n <= 10 else 1, timeout=30)
    backoffs = [re.search(r"restart (\d+) in ([\d.]+)s$", t.reason) for t in m.transitions("ai:0") if t.new == "BACKOFF"]
    assert [int(b.group(1)) for b in backoffs if b] == list(range(1, 11))
    for k, b in enumerate(backoffs):
        assert b is not None and abs(float(b.group(2)) - 0.01 * 2 ** k) <= 0.01 * 2 ** k * 0.1 + 0.001, \
            f"restart {k + 1}: {b.group(2)}s is not 10 ms * 2^{k} (+/- the 10% jitter)"
    fatal = m.transitions("ai:0")[-1]
    assert fatal.new == "FATAL" and "more than 10 restarts in 30m: manual intervention needed (supctl start ai:0)" in fatal.reason
    url = base_url(m)
    assert {r["bot"]: r["state"] for r in httpx.get(f"{url}/status").json()["instances"]}["ai"] == "FATAL"
    assert httpx.get(f"{url}/health").status_code == 503
    starts, runs = (len([t for t in m.transitions("ai:0") if t.new == state]) for state in ("STARTING", "RUNNING"))
    assert m.ctl("start", "ai").returncode == 0, "the manual intervention"
    m.wait_transition("ai:0", "RUNNING", count=runs + 1, timeout=30)
    assert len([t for t in m.transitions("ai:0") if t.new == "STARTING"]) == starts + 1, "nothing restarted it while FATAL"
    assert m.stop() == 0

    again = master(text)
    pids = running(again)
    assert not set(pids.values()) & killed
    resync(again, pids)
    assert again.stop() == 0
