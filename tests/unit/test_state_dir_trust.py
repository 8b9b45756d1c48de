"""A state_dir someone else controls (issue 12 item 12): refused with an error naming supervisor.state_dir; state
files are written through unpredictable O_EXCL|O_NOFOLLOW temp names."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from supervisor.core.errors import ConfigErrors
from supervisor.master import daemon

NOBODY = 65534
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make files another user owns")


def refusal(state_dir: Path) -> str:
    with pytest.raises(ConfigErrors) as e:
        daemon.make_state_dir(state_dir, "procfile.toml")
    (err,) = e.value.errors
    assert err.key == "supervisor.state_dir"
    return err.message


def test_fresh_state_dir_and_logs_are_created_owner_only(tmp_path: Path) -> None:
    daemon.make_state_dir(tmp_path / "state", "procfile.toml")
    for d in (tmp_path / "state", tmp_path / "state" / "logs"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700


@root_only
def test_state_dir_owned_by_another_user_is_refused(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir(mode=0o700)
    os.chown(tmp_path / "state", NOBODY, NOBODY)
    assert "is owned by uid 65534, not by this user" in refusal(tmp_path / "state")


@root_only
def test_logs_dir_planted_by_another_user_is_refused(tmp_path: Path) -> None:
    (tmp_path / "state" / "logs").mkdir(parents=True, mode=0o700)
    os.chown(tmp_path / "state" / "logs", NOBODY, NOBODY)
    assert "logs is owned by uid 65534" in refusal(tmp_path / "state")


def test_state_dir_writable_by_others_is_refused(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    os.chmod(tmp_path / "state", 0o777)
    assert "is writable by group and others (mode 777); run chmod go-w" in refusal(tmp_path / "state")


def test_parent_writable_by_others_is_refused_unless_sticky(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    assert f"{shared} is writable by group and others" in refusal(shared / "state")
    os.chmod(shared, 0o1777)  # like /tmp: others may create, not rename or delete what is ours
    daemon.make_state_dir(shared / "state", "procfile.toml")


def test_symlinked_logs_dir_is_refused_and_its_target_not_chmodded(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o755)
    (tmp_path / "state").mkdir(mode=0o700)
    (tmp_path / "state" / "logs").symlink_to(target)
    assert "logs is a symlink" in refusal(tmp_path / "state")
    assert stat.S_IMODE(target.stat().st_mode) == 0o755


def test_write_atomic_never_follows_a_planted_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious")
    status = tmp_path / "status.json"
    for name in (f".status.json.{os.getpid()}.tmp", "status.json"):  # the old predictable temp name, the target
        (tmp_path / name).symlink_to(victim)
    daemon.write_atomic(status, b"{}")
    assert victim.read_text() == "precious"
    assert not status.is_symlink() and status.read_bytes() == b"{}"
    assert stat.S_IMODE(status.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f".status.json.{os.getpid()}.tmp", "status.json", "victim"])
