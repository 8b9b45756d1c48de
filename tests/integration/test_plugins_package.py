"""The example plugin package installs with pip and is discovered through its entry points."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = textwrap.dedent("""
    import asyncio, importlib.metadata, json, os, pathlib, sys
    from supervisor.health.runner import HealthRunner
    from supervisor.health.loader import GROUP, load_registry, parse_health
    from supervisor.health.testing import FakeTarget, bundled_entry_points

    work = pathlib.Path(sys.argv[1])
    installed = list(importlib.metadata.entry_points(group=GROUP))  # the example comes from here
    names = {ep.name for ep in installed}
    # supctl's own entry points, until pyproject declares them and supctl is reinstalled
    registry = load_registry([], work, entry_points=installed + [ep for ep in bundled_entry_points() if ep.name not in names])
    specs = parse_health("procfile.toml", "beater", [{
        "check": "file_fresh", "path": str(work / "{bot}-{instance}.beat"), "max_age": "10s",
        "every": "20ms", "failures": 1,
        "recover": ["restart", {"name": "incident_log", "path": str(work / "incidents.jsonl")}],
    }], registry)

    async def main():
        target = FakeTarget(bot="beater", pid=os.getpid())
        runner = HealthRunner(specs, target)
        runner.start()
        while not any(r.kind == "recovery" for r in runner.history()):
            await asyncio.sleep(0.01)
        await runner.stop()
        (work / "beater-0.beat").touch()
        ok = HealthRunner(specs, target)
        ok.start()
        healthy = await ok.wait_healthy(5)
        await ok.stop()
        return {"origin": registry.origin("check", "file_fresh"), "calls": target.controller.calls,
                "first": target.results[0][1].reason, "healthy": healthy,
                "history": [r.ok for r in runner.history() if r.kind == "recovery"]}

    print(json.dumps(asyncio.run(main())))
""")


def test_example_package_installs_and_registers_through_entry_points(tmp_path):
    source = tmp_path / "src"
    shutil.copytree(ROOT / "examples" / "plugins", source)  # pip builds in tree: keep the repo clean
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(source)], check=True, timeout=120)
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(target)}
    done = subprocess.run([sys.executable, "-c", PROBE, str(work)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    assert "check.file_fresh = supctl_example.checks:FileFresh" in found["origin"]
    assert "supctl-example-plugins" in found["origin"]
    assert found["first"].endswith("beater-0.beat does not exist yet")
    assert found["calls"][0][0] == "restart" and found["history"] and all(found["history"])  # a busy loop may fit a second
    assert found["healthy"]
    incident = json.loads((work / "incidents.jsonl").read_text().splitlines()[0])
    assert incident["bot"] == "beater" and incident["failure"].startswith("file_fresh: ")
