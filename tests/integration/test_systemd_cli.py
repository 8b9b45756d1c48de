"""`supctl systemd` end to end: the units the command prints pass `systemd-analyze verify` cleanly, and
`--install` writes where systemd looks and says what is left to run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from harness import SUPCTL

ANALYZE = shutil.which("systemd-analyze")
pytestmark = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")


def procfile(tmp_path: Path) -> Path:
    path = tmp_path / "bots dir" / "procfile.toml"
    path.parent.mkdir()
    path.write_text('[bots.a]\ncmd = "sleep 1"\nstop_timeout = "20s"\n[bots.b]\ncmd = "sleep 1"\nstop_timeout = "7s"\n'
                    'depends_on = ["a"]\n')
    return path


def verify(unit: Path, tmp_path: Path, user: bool) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    argv = [ANALYZE, "verify", "--man=no"]
    if user:
        runtime = tmp_path / "runtime"
        runtime.mkdir(mode=0o700, exist_ok=True)
        env["XDG_RUNTIME_DIR"] = str(runtime)
        argv.append("--user")
    return subprocess.run([*argv, str(unit)], capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.parametrize("user", [False, True], ids=["system", "user"])
def test_printed_unit_passes_systemd_analyze_verify(tmp_path: Path, user: bool) -> None:
    pf = procfile(tmp_path)
    out = subprocess.run([*SUPCTL, "systemd", "-c", str(pf), "--name", "bots", *(["--user"] if user else [])],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert f"WorkingDirectory={pf.parent}" in text
    assert f'"{Path(sys.executable).with_name("supctl")}" "start" "-f" "-c" "{pf}"' in text
    assert "TimeoutStopSec=42s" in text  # the chain b -> a: 7s + 20s, plus 15s to kill, reap and exit
    assert ("User=" in text) is not user
    if not user and os.geteuid() == 0 and pf.stat().st_uid == 0:
        assert "warning: the unit would run every bot as root" in out.stderr
    unit = tmp_path / "bots.service"
    unit.write_text(text)
    checked = verify(unit, tmp_path, user)
    assert checked.returncode == 0 and checked.stderr == "" and checked.stdout == "", checked.stderr


def test_install_writes_the_user_unit_and_says_what_to_run(tmp_path: Path) -> None:
    pf = procfile(tmp_path)
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "config")}
    out = subprocess.run([*SUPCTL, "systemd", "-c", str(pf), "--user", "--install", "--name", "bots"],
                         capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    unit = tmp_path / "config" / "systemd" / "user" / "bots.service"
    assert unit.exists() and "Type=notify" in unit.read_text()
    assert f"wrote {unit}" in out.stdout
    if not Path("/run/systemd/system").exists():
        assert "systemctl --user daemon-reload" in out.stdout and "enable --now bots" in out.stdout
