"""The registry's locks and lookups, in-process (a second open of a flocked file conflicts like another process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from supervisor.cli.locate import find_upwards
from supervisor.config import registry


def test_a_second_claim_of_a_procfile_is_refused_until_the_first_is_released(tmp_path: Path) -> None:
    procfile = tmp_path / "procfile.toml"
    first = registry.Claim(str(procfile))
    with pytest.raises(registry.Taken, match="already running"):
        registry.Claim(str(procfile))
    first.release()
    registry.Claim(str(procfile)).release()


def test_a_state_dir_is_claimed_once_whatever_the_procfile(tmp_path: Path) -> None:
    a, b = registry.Claim(str(tmp_path / "a.toml")), registry.Claim(str(tmp_path / "b.toml"))
    a.lock_state_dir(str(tmp_path))
    with pytest.raises(registry.Taken, match="in use by another master"):
        b.lock_state_dir(str(tmp_path))
    a.release()


def test_register_publishes_the_entry_by_absolute_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    claim = registry.Claim("procfile.toml")
    claim.register("/x/control.sock", "/x", "1.2.3")
    entry = registry.read(str(tmp_path / "procfile.toml"))
    assert entry is not None and (entry.control_socket, entry.pid, entry.version) == ("/x/control.sock", os.getpid(), "1.2.3")
    assert [e.procfile for e in registry.entries()] == [str(tmp_path / "procfile.toml")]
    claim.unregister()
    assert registry.read("procfile.toml") is None
    claim.release()


def test_a_runtime_dir_others_can_write_is_refused(runtime_dir: Path, tmp_path: Path) -> None:
    (runtime_dir / "supctl").mkdir(mode=0o700)
    os.chmod(runtime_dir / "supctl", 0o777)
    with pytest.raises(Exception, match="must be owned by you and private"):
        registry.Claim(str(tmp_path / "p.toml"))


def test_without_xdg_runtime_dir_the_registry_lives_under_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("XDG_RUNTIME_DIR")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert registry.runtime_dir() == str(tmp_path / ".local" / "state" / "supctl")


def test_a_long_path_gets_a_bounded_entry_name() -> None:
    name = registry.key("/" + "x" * 400 + "/procfile.toml")
    assert len(name) < 255 and name != registry.key("/" + "x" * 401 + "/procfile.toml")


def test_find_upwards_stops_at_the_nearest(tmp_path: Path) -> None:
    (tmp_path / "procfile.toml").write_text("")
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "procfile.toml").write_text("")
    assert find_upwards(str(tmp_path / "a" / "b")) == str(tmp_path / "a" / "procfile.toml")


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "SUPCTL_PROCFILE"}
    return subprocess.run([sys.executable, "-m", "supervisor.cli.main", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=60)


def test_no_procfile_anywhere_names_every_way_to_find_one(tmp_path: Path) -> None:
    out = run_cli("status", cwd=tmp_path)
    assert out.returncode == 1
    assert "-c PATH" in out.stderr and "SUPCTL_PROCFILE" in out.stderr and "supctl ls" in out.stderr


def test_version_flag(tmp_path: Path) -> None:
    import supervisor

    for flag in ("-V", "--version"):
        out = run_cli(flag, cwd=tmp_path)
        assert out.returncode == 0 and out.stdout.strip() == f"supctl {supervisor.__version__}"
