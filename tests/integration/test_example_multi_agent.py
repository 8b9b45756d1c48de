"""examples/multi-agent: degradation levels from the share of healthy agents, with agents refusing the capabilities
above the level; self-healing after 3 failed checks; the circuit breaker opening after 3 restarts (DEGRADED, the
fleet reduced), its half-open probe and its closing; an agent killed mid-task resuming from its last checkpoint after
its crash and after a master restart. Compressed: a step every 2 s -> 0.2 s, the checks every 5 s -> 0.5 s, the
restart backoff from 1 s -> 0.1 s; the breaker's 10 s open is kept (the test reads the fleet's level while it is open)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
from pathlib import Path

import pytest
from harness import Master, parse_time

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "multi-agent"
STEPS = 5
"""len(agent.PLAN): the steps of one task."""
CHECKPOINT = re.compile(r"^checkpoint task (\d+) step (\d+) ")
RESTORED = r"^restored task (\d+) step (\d+) from its checkpoint$"


def procfile(tmp_path: Path) -> str:
    work = tmp_path / "example"
    shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns(".supctl", "__pycache__"))
    text = (work / "procfile.toml").read_text()
    for old, new, n in [('state_dir = ".supctl"', 'state_dir = "state"', 1), ('STEP_EVERY = "2"', 'STEP_EVERY = "0.2"', 1),
                        ('every = "5s"', 'every = "0.5s"', 3),
                        ('initial = "1s"', 'initial = "100ms"', 1)]:
        assert text.count(old) == n, old
        text = text.replace(old, new)
    return text.replace('cmd = ["python3", "', f'cwd = "{work}"\ncmd = ["python3", "')


def count(m: Master, pattern: str, path: Path | None = None) -> int:
    return sum(bool(re.search(pattern, line)) for line in m.lines(path))


def position(task: int, step: int) -> int:
    return (task - 1) * STEPS + step


def resumed(m: Master, role: str, nth: int) -> tuple[int, int]:
    """The nth restore of `role`, and the position of the last checkpoint its previous process printed before it."""
    log = m.logs / f"{role}.log"
    got = m.wait_line(RESTORED, count=nth, path=log, timeout=60)[nth - 1]
    lines = m.lines(log)
    at = [i for i, line in enumerate(lines) if re.search(RESTORED, line)][nth - 1]
    last = [c for line in lines[:at] if (c := CHECKPOINT.match(line))][-1]
    return position(int(got.group(1)), int(got.group(2))), position(int(last.group(1)), int(last.group(2)))


def pid_of(m: Master, bot: str) -> int:
    return next(r["pid"] for r in json.loads(m.ctl("status", "--json").stdout)["instances"] if r["bot"] == bot)


def more_checkpoints(m: Master, role: str, n: int = 2) -> None:
    log = m.logs / f"{role}.log"
    m.wait_line(CHECKPOINT.pattern, count=count(m, CHECKPOINT.pattern, log) + n, path=log, timeout=30)


def level_line(m: Master, level: str, healthy: int, serving: str, refusing: str, after: int) -> None:
    """The planner announces `level` once more than the `after` times it already had."""
    pattern = rf"^level {level} \({healthy} of 3 agents healthy\): serving {serving}; refusing {refusing}$"
    m.wait_line(pattern, count=after + 1, path=m.logs / "planner.log", timeout=60)


@pytest.mark.slow
def test_multi_agent(master, tmp_path: Path) -> None:
    text = procfile(tmp_path)
    m = master(text)
    planner = m.logs / "planner.log"
    for role in ("planner", "researcher", "writer"):
        m.wait_transition(f"{role}:0", "RUNNING", timeout=30)
        m.wait_line(r"^starting fresh at task 1 step 0$", path=m.logs / f"{role}.log", timeout=30)
        more_checkpoints(m, role)

    # degradation: the share of healthy agents sets the level, and the agents refuse what the level does not allow
    reduced, minimal = (count(m, rf"^level {x} ", planner) for x in ("reduced", "minimal"))
    assert m.ctl("stop", "writer").returncode == 0  # 2 of 3 healthy: 0.67 < 0.7
    level_line(m, "reduced", 2, "drafting, core", "web_research", reduced)
    assert m.ctl("stop", "researcher").returncode == 0  # 1 of 3: 0.33 < 0.4
    level_line(m, "minimal", 1, "core", "web_research, drafting", minimal)
    m.wait_line(r"^checkpoint task \d+ step \d+ \(refused (web_research|drafting) at level minimal\)", path=planner)
    assert "fleet degradation: minimal" in m.ctl("status").stdout
    normal = count(m, r"^level normal \(3 of 3 ", planner)
    assert m.ctl("start", "writer").returncode == 0 and m.ctl("start", "researcher").returncode == 0
    level_line(m, "normal", 3, "web_research, drafting, core", "nothing", normal)

    # checkpoints: killed mid-task, the researcher resumes from its last checkpoint after its crash
    restores = count(m, RESTORED, m.logs / "researcher.log")
    more_checkpoints(m, "researcher")
    os.kill(pid_of(m, "researcher"), signal.SIGKILL)
    now, before = resumed(m, "researcher", restores + 1)
    assert now - before in (0, 1), "its last checkpoint (or the one saved as it was killed, before it could say so)"

    # self-healing: 3 failed checks in a row restart it, and the new process resumes where the failing one stood
    more_checkpoints(m, "researcher")
    stops = len([t for t in m.transitions("researcher:0") if t.new == "STOPPING"])
    assert m.ctl("bus", "pub", "agents.fault.researcher", '{"error": "tool timeout"}').returncode == 0
    healed = m.wait_transition("researcher:0", "STOPPING", count=stops + 1, timeout=30)[-1]
    assert healed.reason.startswith("health: log_pattern: output matched /^error: /: error: "), healed.reason
    now, before = resumed(m, "researcher", restores + 2)
    assert now == before, "no step is lost to the failing calls"
    more_checkpoints(m, "researcher")

    # the circuit breaker: a fault that outlasts restarts opens it after 3, the writer is DEGRADED, the fleet reduced
    writer_restores = count(m, RESTORED, m.logs / "writer.log")
    assert m.ctl("bus", "pub", "agents.fault.writer", '{"error": "model API 503"}', "--retain").returncode == 0
    opened = m.wait_line(r"writer:0 marked DEGRADED: circuit breaker open: 3 recoveries within 600s", timeout=90)[0].string
    at = parse_time(" ".join(opened.split()[:2]))
    restarts = [t for t in m.transitions("writer:0") if t.new == "STOPPING" and t.reason.startswith("health: log_pattern")]
    assert len([t for t in restarts if t.at < at + 1]) == 3, [t.reason for t in restarts]  # the probe comes 10 s later
    normal = count(m, r"^level normal \(3 of 3 ", planner)  # the level stays reduced while the circuit is open
    refusals = count(m, r"\(refused web_research at level reduced\)", planner)
    status = m.ctl("status").stdout
    assert re.search(r"^writer .*DEGRADED: circuit breaker open", status, re.MULTILINE), status
    assert "fleet degradation: reduced" in status, status
    m.wait_line(r"\(refused web_research at level reduced\)", count=refusals + 1, path=planner, timeout=30)
    now, before = resumed(m, "writer", writer_restores + 3)
    assert now == before, "each restart resumed from the checkpoint before the fault"

    # half-open after the cooldown: one probe restart; with the fault gone the next pass closes the circuit
    m.wait_line(r"circuit half-open for writer: trying restart once", timeout=60)
    assert m.ctl("bus", "pub", "agents.fault.writer", "null", "--retain").returncode == 0
    m.wait_line(r"writer:0 no longer DEGRADED: circuit breaker closed", timeout=60)
    level_line(m, "normal", 3, "web_research, drafting, core", "nothing", normal)
    more_checkpoints(m, "writer")

    # a master restart: the researcher, stopped mid-task, resumes from its last checkpoint
    more_checkpoints(m, "researcher")
    assert m.stop() == 0
    again = master(text)
    now, before = resumed(again, "researcher", restores + 3)
    assert now - before in (0, 1)
    more_checkpoints(again, "researcher")
    assert again.stop() == 0
