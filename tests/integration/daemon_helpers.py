"""Drive a real daemonized master through the real `supctl` command, in a temp dir."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
from harness import token_procs, wait_until

SUPCTL = [sys.executable, "-m", "supervisor.cli.main"]
SLEEPER = "import time\nwhile True: time.sleep(1)"


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    return wait_until(predicate, timeout, what)


class Daemon:
    """A procfile in tmp_path and the master `supctl start` runs for it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procfile = root / "procfile.toml"
        self.state = root / "state"
        self.token = uuid.uuid4().hex
        """Every process a test starts carries it (SUPCTL_TEST_TOKEN), so leftovers are found after re-parenting."""

    def write(self, body: str) -> None:
        self.procfile.write_text('[supervisor]\nstate_dir = "state"\n' + textwrap.dedent(body))

    def run(self, *args: str, check: bool = False, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "SUPCTL_PROCFILE": str(self.procfile), "SUPCTL_TEST_TOKEN": self.token}
        proc = subprocess.run([*SUPCTL, *args], cwd=self.root, env=env, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"supctl {' '.join(args)} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    def status(self, *target: str) -> list[dict[str, Any]]:
        return json.loads(self.run("status", *target, "--json", check=True).stdout)["instances"]

    def states(self) -> dict[str, str]:
        return {f"{r['bot']}:{r['instance']}": r["state"] for r in self.status()}

    def wait_states(self, expected: dict[str, str], timeout: float = 15.0) -> dict[str, str]:
        return wait_for(lambda: (s := self.states()) and all(s.get(k) == v for k, v in expected.items()) and s,
                        timeout, f"states {expected}")

    def master_pid(self) -> int | None:
        try:
            return json.loads((self.state / "status.json").read_text())["pid"]
        except (OSError, ValueError, KeyError):
            return None

    def cleanup(self) -> list[str]:
        """Teardown, as the `master` fixture does it: shut down, give the guardian its chance, then kill and
        report every process carrying this test's token that is still running."""
        pid = self.master_pid()
        if pid is not None and psutil.pid_exists(pid):
            self.run("shutdown", timeout=60)
        report = []
        for p in psutil.wait_procs(token_procs(self.token), timeout=5)[1]:
            try:
                report.append(f"pid {p.pid}: {' '.join(p.cmdline())}")
                os.killpg(p.pid, signal.SIGKILL) if os.getpgid(p.pid) == p.pid else p.kill()
            except (ProcessLookupError, PermissionError, psutil.Error):
                pass
        return report


@contextlib.contextmanager
def steady_master(root: Path, supervisor_extra: str = "") -> Iterator[Daemon]:
    """A started master with one sleeping bot `steady`; on exit, asserts nothing it started is left."""
    d = Daemon(root)
    d.write(f'''
        {supervisor_extra}
        [bots.steady]
        cmd = ["{sys.executable}", "-c", {json.dumps(SLEEPER)}]
        start_grace = "100ms"
    ''')
    d.run("start", check=True)
    d.wait_states({"steady:0": "RUNNING"})
    yield d
    leftovers = d.cleanup()
    assert not leftovers, "processes left running after the tests:\n" + "\n".join(leftovers)
