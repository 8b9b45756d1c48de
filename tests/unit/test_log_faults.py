"""Log I/O faults (issue 12 items 10 and 12): a deleted or unwritable logs/ never raises into the pipe reader;
lost bytes are counted, the file comes back by itself, and a planted symlink is never followed or chmod-ed."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from supervisor.output.rotating import LineSplitter, RotatingLog


def test_logs_dir_deleted_under_a_writer_is_recreated(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    log = RotatingLog(logs / "bot.log", 10_000, 2, retry=0)
    log.write_lines(b"one\n")
    shutil.rmtree(logs)
    log.write_lines(b"two\n")
    assert (logs / "bot.log").read_bytes() == b"two\n"
    assert log.lost_bytes == 4  # what went into the deleted file since the last look at it
    assert stat.S_IMODE(logs.stat().st_mode) == 0o700


def test_logs_dir_unwritable_counts_lost_bytes_and_resumes(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    log = RotatingLog(logs / "bot.log", 64, 2, retry=0)
    splitter = LineSplitter(log)
    shutil.rmtree(logs)
    logs.write_text("not a directory")  # unwritable even for root: mkdir and open fail with ENOTDIR
    for _ in range(40):  # well past max_size: rotation fails too, and nothing raises
        splitter.feed(b"0123456789\n")
    assert log.lost_bytes == 40 * 11
    logs.unlink()
    splitter.feed(b"back\n")
    assert (logs / "bot.log").read_bytes() == b"back\n"
    assert log.lost_bytes == 40 * 11


def test_logs_unwritable_at_open_never_raises(tmp_path: Path) -> None:
    (tmp_path / "logs").write_text("")
    log = RotatingLog(tmp_path / "logs" / "bot.log", 1000, 1, retry=0)
    log.write_lines(b"lost\n")
    log.rotate()
    log.close()
    assert log.lost_bytes == 5 and log.errors >= 2


def test_symlink_planted_at_log_path_is_neither_followed_nor_chmodded(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious\n")
    victim.chmod(0o644)
    (tmp_path / "logs").mkdir()
    os.symlink(victim, tmp_path / "logs" / "bot.log")
    log = RotatingLog(tmp_path / "logs" / "bot.log", 1000, 1, retry=0)
    log.write_lines(b"attacker wins\n")
    assert victim.read_bytes() == b"precious\n"
    assert stat.S_IMODE(victim.stat().st_mode) == 0o644
    assert log.lost_bytes == len(b"attacker wins\n")
