"""examples/continuous-bots: the three bots hear each other's status over the bus, /health and /status answer, the
kill switch makes the trader flatten its paper positions and nothing restarts until it is released, even across a
master restart. Compressed: SYNC_EVERY 5 s -> 0.2 s; the HTTP port is the kernel's choice."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest
from http_helpers import base_url

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "continuous-bots"


def procfile(tmp_path: Path) -> str:
    work = tmp_path / "example"
    shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns(".supctl", "__pycache__"))
    text = (work / "procfile.toml").read_text()
    text = text.replace('state_dir = ".supctl"', 'state_dir = "state"').replace('SYNC_EVERY = "5"', 'SYNC_EVERY = "0.2"')
    text = text.replace('listen = "127.0.0.1:8765"', 'listen = "127.0.0.1:0"')
    assert "0.2" in text and ":0" in text
    return text.replace('cmd = ["python3", "', f'cwd = "{work}"\ncmd = ["python3", "')


@pytest.mark.slow
def test_continuous_bots(master, tmp_path: Path) -> None:
    text = procfile(tmp_path)
    m = master(text)
    url = base_url(m)
    for me, others in {"trader": ("freelance", "ai"), "freelance": ("trader", "ai"), "ai": ("trader", "freelance")}.items():
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
    assert again.ctl("start", "trader").returncode == 0
    again.wait_transition("trader:0", "RUNNING", count=2)
    assert again.stop() == 0
