"""What the benchmarks share: waiting, throwaway venvs for the baselines, a supervisord and a pm2 to compare against."""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
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


def median_ms(argv: list[str], runs: int, env: dict[str, str] | None = None) -> float:
    """Median wall time of `runs` runs of a command, in ms (its output thrown away)."""
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def venv_with(name: str, package: str, fresh: bool = False) -> Path:
    """A venv under bench/.venvs holding `package`; reused across runs unless `fresh`."""
    venv = VENVS / name
    if fresh or not (venv / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        subprocess.run([str(venv / "bin/pip"), "install", "-q", package], check=True)
    return venv


def supctl_venv() -> Path:
    """supctl pip-installed as users install it (a regular package with compiled bytecode, not the editable dev
    install, whose import hook and uncompiled modules cost start time and memory), rebuilt every run."""
    return venv_with("supctl", str(ROOT), fresh=True)


def pm2_bin() -> Path:
    """pm2 from the npm registry into bench/.venvs/pm2 (npm --prefix, never global); reused across runs."""
    prefix = VENVS / "pm2"
    pm2 = prefix / "node_modules" / ".bin" / "pm2"
    if not pm2.exists():
        subprocess.run(["npm", "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--silent", "pm2"], check=True)
    return pm2


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


class Pm2:
    """pm2 with its own PM2_HOME under `tmp` (so it never meets a user's pm2); `apps` are ecosystem-file entries.

    `pm2 start` daemonizes (it launches the God daemon, which spawns the apps); `pid` is that daemon."""

    def __init__(self, tmp: Path, apps: list[dict[str, object]]) -> None:
        self.bin = pm2_bin()
        self.tmp = tmp
        self.env = {**os.environ, "PM2_HOME": str(tmp / "pm2-home"), "PM2_DISABLE_UPDATE_CHECK": "true"}
        self.ecosystem = tmp / "ecosystem.json"
        self.ecosystem.write_text(json.dumps({"apps": apps}))
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> subprocess.Popen[bytes]:
        self.proc = subprocess.Popen([str(self.bin), "start", str(self.ecosystem)], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self.proc

    @property
    def pid(self) -> int:
        path = self.tmp / "pm2-home" / "pm2.pid"
        wait_until(lambda: path.exists() and path.read_text().strip(), 60, "pm2's daemon pid")
        return int(path.read_text())

    def ctl(self, *args: str) -> list[str]:
        return [str(self.bin), *args]

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.wait(120)
            subprocess.run(self.ctl("kill"), env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            self.proc = None
