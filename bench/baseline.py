"""What the benchmarks share: waiting, throwaway venvs for the baselines, a supervisord to compare against."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENVS = ROOT / "bench" / ".venvs"
"""Baselines are installed here (git-ignored), never into the project's own environment."""


def wait_until(check: Callable[[], object], timeout: float, what: str, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(every)


def venv_with(name: str, package: str, fresh: bool = False) -> Path:
    """A venv under bench/.venvs holding `package`; reused across runs unless `fresh`."""
    venv = VENVS / name
    if fresh or not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(venv / "bin/pip"), "install", "-q", package], check=True)
    return venv


class Supervisord:
    """supervisord 4.x in the foreground on a generated config under `tmp`; `programs` is raw INI text."""

    def __init__(self, tmp: Path, programs: str) -> None:
        self.venv = venv_with("supervisor", "supervisor")
        self.tmp = tmp
        self.conf = tmp / "supervisord.conf"
        self.log = tmp / "supervisord.log"
        self.conf.write_text(f"""[unix_http_server]
file={tmp}/sv.sock
[supervisord]
logfile={self.log}
pidfile={tmp}/sv.pid
childlogdir={tmp}
nodaemon=true
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[supervisorctl]
serverurl=unix://{tmp}/sv.sock

{programs}""")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> subprocess.Popen[bytes]:
        self.proc = subprocess.Popen([str(self.venv / "bin/supervisord"), "-c", str(self.conf)], start_new_session=True,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self.proc

    def ctl(self, *args: str) -> list[str]:
        return [str(self.venv / "bin/supervisorctl"), "-c", str(self.conf), *args]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)
