"""examples/service-mode: tasks once (at), every and cron with `supctl run` to execute one now; warn-only disk and
memory checks that report without acting; the graceful shutdown order in supervisor.log (task schedules cancelled,
the run going awaited, then the bots in reverse dependency order); /metrics scraped; `supctl validate` as the config
check. Compressed: health every 60 s -> 200 ms and its thresholds 90% / 80% -> 0.001% (so both warnings fire on any
machine); digest every 15 m -> 300 ms; the once task's `at` (2027-01-01) -> 12 s after the procfile is written (a master that starts after
its `at` never runs it, so this leaves room for a slow start under load); the
report's 3 s of work -> 5 s (so it is surely still going when the master gets SIGTERM); the HTTP port is the kernel's
choice. The cron schedule (09:00) is not waited for: `supctl run report` runs it."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from harness import SUPCTL, Master, wait_until
from http_helpers import base_url
from prometheus_client.parser import text_string_to_metric_families

AT_AFTER = 12
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "service-mode"


def instances(m: Master) -> list[dict]:
    done = m.ctl("status", "--json")
    return json.loads(done.stdout)["instances"] if done.returncode == 0 else []


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics as Prometheus reads it: every sample by name and sorted labels."""
    text = httpx.get(f"{url}/metrics").text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in text_string_to_metric_families(text) for s in f.samples}


def copy(tmp_path: Path) -> tuple[Path, str]:
    work = tmp_path / "example"
    shutil.copytree(EXAMPLE, work, ignore=shutil.ignore_patterns(".supctl", "__pycache__"))
    return work, (work / "procfile.toml").read_text()


def compressed(work: Path, text: str) -> str:
    soon = (datetime.now(UTC) + timedelta(seconds=AT_AFTER)).strftime("%Y-%m-%dT%H:%M:%S")
    for old, new in [('state_dir = ".supctl"', 'state_dir = "state"'), ('every = "60s"', 'every = "200ms"'),
                     ("max_disk_percent = 90", "max_disk_percent = 0.001"), ("max_memory_percent = 80", "max_memory_percent = 0.001"),
                     ('every = "15m"', 'every = "300ms"'), ("at = 2027-01-01T00:00:00", f"at = {soon}"),
                     ('REPORT_SECONDS = "3"', 'REPORT_SECONDS = "5"'), ('listen = "127.0.0.1:8766"', 'listen = "127.0.0.1:0"')]:
        assert old in text, old
        text = text.replace(old, new)
    return text.replace('cmd = ["python3", "', f'cwd = "{work}"\ncmd = ["python3", "')


def test_validate_passes_on_the_example_and_names_the_broken_keys(tmp_path: Path) -> None:
    work, text = copy(tmp_path)
    ok = subprocess.run([*SUPCTL, "validate", str(work / "procfile.toml")], capture_output=True, text=True, timeout=60, check=False)
    assert ok.returncode == 0 and "ok, 2 bots, 2 instances" in ok.stdout, ok.stderr
    broken = work / "broken.toml"
    broken.write_text(text.replace('severity = "warn"', 'severity = "warning"', 1).replace('every = "15m"', "every = 15"))
    bad = subprocess.run([*SUPCTL, "validate", str(broken)], capture_output=True, text=True, timeout=60, check=False)
    assert bad.returncode == 1
    assert f"{broken}: bots.assistant.health[0].severity: expected \"error\" or \"warn\", found 'warning'" in bad.stderr
    assert f"{broken}: tasks.digest.every: expected a duration string" in bad.stderr and 'write "15s"' in bad.stderr
    assert bad.stderr.rstrip().endswith("2 errors")


@pytest.mark.slow
def test_service_mode(master, tmp_path: Path) -> None:
    work, text = copy(tmp_path)
    m = master(compressed(work, text))
    url = base_url(m)
    m.wait_transition("assistant:0", "RUNNING", timeout=30)
    assert m.transitions("store:0")[-1].new == "RUNNING", "the store starts before the assistant that depends on it"
    asked = m.ctl("bus", "request", "assistant.ask", '"weather?"')
    assert asked.returncode == 0 and "you asked 'weather?' 1 time(s)" in asked.stdout, asked.stderr

    m.wait_line(r"task digest: exited \(code 0\)", count=2)  # every

    # warn-only checks: reported in the log, status and /metrics; the assistant stays healthy and is never restarted
    m.wait_line(r"assistant:0 health healthy: warn: host: disk / \d+% > max 0\.001%; host: memory \d+% > max 0\.001%$")
    row = wait_until(lambda: next((r for r in instances(m) if r["bot"] == "assistant" and "memory" in r["health"]["reason"]), None),
                     15, "both warnings in the assistant's health")
    assert row["health"]["state"] == "healthy" and row["health"]["reason"].startswith("warn: ") and row["restarts"] == 0
    scraped = scrape(url)
    assert scraped[("supctl_check_healthy", (("bot", "assistant"), ("check", "host"), ("instance", "0")))] == 0.0
    assert scraped[("supctl_check_healthy", (("bot", "assistant"), ("check", "host#2"), ("instance", "0")))] == 0.0
    assert scraped[("supctl_instance_up", (("bot", "assistant"), ("instance", "0")))] == 1.0
    assert scraped[("supctl_task_runs_total", (("result", "success"), ("task", "digest")))] >= 2
    assert httpx.get(f"{url}/health").status_code == 200

    m.wait_line(r"task welcome: exited \(code 0\)", timeout=60)  # once, at its time
    ran = m.ctl("run", "welcome")  # "execute now"; the cron report below is run the same way
    assert ran.returncode == 0 and "welcome: exited, exit code 0" in ran.stdout, ran.stderr
    assert m.text(m.logs / "welcome.log").count("welcome: happy new year") == 2

    # the graceful shutdown order, with a report being written when SIGTERM comes
    report = subprocess.Popen([*SUPCTL, "run", "report"], env=m.env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        m.wait_line(r"^report: writing", path=m.logs / "report.log")
        m.signal(signal.SIGTERM)
        assert m.wait_exit(60) == 0
        out, _ = report.communicate(timeout=60)
    finally:
        report.kill()
    assert report.returncode == 0 and "report: exited, exit code 0" in out, out
    lines = m.lines()
    start = max(i for i, line in enumerate(lines) if "received SIGTERM: shutting down" in line)
    order = ["shutdown: cancelling 3 task schedules; runs going are awaited",
             "task report: schedule cancelled; awaiting the run going (pid ",
             "task report: exited (code 0)",
             "shutdown: stopping 2 bots in reverse dependency order",
             "stopping assistant (master shutdown)",
             "assistant:0 STOPPING -> STOPPED",
             "stopping store (master shutdown)",
             "store:0 STOPPING -> STOPPED",
             "shutdown complete"]
    at = [next((i for i in range(start, len(lines)) if want in lines[i]), None) for want in order]
    assert None not in at and at == sorted(at), "\n".join(lines[start:])
    assert "report: written" in m.text(m.logs / "report.log")
    assert "the store still answers (1 questions kept)" in m.text(m.logs / "assistant.log")
