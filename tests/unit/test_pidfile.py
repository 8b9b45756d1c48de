"""master.pid: the pid alone, as init scripts read it, and a pid counts as the master only if that process was
already running when the file was written (a reused pid belongs to a later process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil

from supervisor.master.daemon import live_master_pid, write_pidfile


def test_pidfile_holds_the_pid_alone_and_names_the_live_master(tmp_path: Path) -> None:
    write_pidfile(tmp_path)
    assert (tmp_path / "master.pid").read_text() == f"{os.getpid()}\n"
    assert live_master_pid(tmp_path) == os.getpid()


def test_a_process_younger_than_the_pidfile_is_not_the_master(tmp_path: Path) -> None:
    write_pidfile(tmp_path)
    started = psutil.Process().create_time()
    os.utime(tmp_path / "master.pid", (started - 60, started - 60))  # written a minute before this process started
    assert live_master_pid(tmp_path) is None


def test_dead_zombie_and_garbage_pids_are_no_master(tmp_path: Path) -> None:
    pidfile = tmp_path / "master.pid"
    assert live_master_pid(tmp_path) is None  # no file
    for text in ("", "planted", "-1\n", "0\n", "[12, 3.5]"):
        pidfile.write_text(text)
        assert live_master_pid(tmp_path) is None, text
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, left a zombie
    pidfile.write_text(f"{child.pid}\n")
    assert live_master_pid(tmp_path) is None  # exited, not yet reaped
    child.wait()
    assert live_master_pid(tmp_path) is None  # gone
