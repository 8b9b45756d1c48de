"""The client path stays light: `supctl status` must not load the master, uvloop or psutil."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("uvloop", "psutil", "supervisor.master.root", "supervisor.engine.instance", "supervisor.config.procfile", "watchfiles",
         "asyncio", "supervisor.cli.completion")


def test_status_verb_imports_nothing_heavy(tmp_path) -> None:
    code = (
        "import sys\n"
        "from supervisor.cli.main import main\n"
        f"main(['-c', {str(tmp_path / 'procfile.toml')!r}, 'status'])\n"
        f"print(sorted(m for m in sys.modules if m in {HEAVY!r}))\n"
    )
    (tmp_path / "procfile.toml").write_text('[bots.a]\ncmd = "true"\n')
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "no master is running" in out.stderr
    assert out.stdout.strip() == "[]"
