"""A master loads a feature's code only when its procfile uses it: every module costs RSS whether it runs or not."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

UNUSED = ("supervisor.jobs.tasks", "supervisor.jobs.schedule", "supervisor.jobs.watch", "supervisor.health.checked",
          "supervisor.health.runner", "supervisor.health.degradation", "supervisor.master.reload",
          "supervisor.config.reload_plan", "supervisor.control.describe", "supervisor.http.hub", "supervisor.health.loader",
          "supervisor.output.echo", "random", "shlex")
"""Tasks, restart_cron, watch, health checks, degradation, reload, describe, [http], plugins, start -f's copy to stdout,
backoff jitter, string cmds."""

MASTER = f"""
import sys
from supervisor.config import registry
from supervisor.health import setup
from supervisor.master import daemon
from supervisor.master.root import run_master

path = sys.argv[1]
claim = registry.Claim(path)
procfile, plugins = setup.load(path)
daemon.make_state_dir(procfile.state_dir, procfile.file)
claim.lock_state_dir(str(procfile.state_dir))
code = run_master(procfile, plugins, claim, lambda outcome: None)  # as daemonized: its stdout is its log
with open(sys.argv[2], "w") as f:
    f.write(repr(sorted(m for m in sys.modules if m in {UNUSED!r})))
sys.exit(code)
"""


def test_a_plain_fleet_loads_no_feature_it_does_not_use(tmp_path: Path) -> None:
    """The bot runs, then tells the master to stop (SIGTERM to its parent): the master started, spawned and shut
    down, and what it imported on the way is what any plain fleet costs."""
    procfile = tmp_path / "procfile.toml"
    procfile.write_text('[supervisor]\nstate_dir = "state"\n'
                        '[bots.plain]\ncmd = ["/bin/sh", "-c", "kill -TERM $PPID; exec sleep 60"]\nstart_grace = "0s"\n')
    loaded = tmp_path / "loaded"
    out = subprocess.run([sys.executable, "-c", MASTER, str(procfile), str(loaded)], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert loaded.read_text() == "[]"
