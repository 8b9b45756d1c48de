"""Helpers for integration tests — a real master on a temp procfile: `supctl start -f` as a subprocess in its own session.

Waits follow files with a deadline (like `tail -f`), never sleep-and-hope. Cleanup kills the
master's group and then asserts that no process started by the test is left: every process the
test starts inherits SUPCTL_TEST_TOKEN, so leftovers are found even after they were re-parented.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import msgspec
import psutil
import pytest

from supervisor.engine import cgroups
from supervisor.engine.guardian_link import GUARDIAN_SCRIPT
from supervisor.engine.journal import JournalLine
from supervisor.plugin import ProcessEvent

BOTS = Path(__file__).parent / "bots"
RECORDER = Path(__file__).parent / "hooks" / "recorder.py"
"""An event hook plugin (name "recorder", option `path`) that appends every ProcessEvent as a JSON line."""
PY = sys.executable
SUPCTL = [PY, "-m", "supervisor.cli.main"]
POLL = 0.01
"""How often a follower looks at a file that has not grown (files have no readiness event)."""

JOURNAL = msgspec.json.Decoder(JournalLine)


@dataclass(frozen=True)
class Transition:
    at: float
    name: str
    old: str
    new: str
    reason: str
    line: int
    """Its index in logs/events.jsonl: transitions and process events are in one order there."""
    pid: int | None

    @property
    def bot(self) -> str:
        return self.name.split(":")[0]


def parse_time(stamp: str) -> float:
    """'2026-11-22 07:32:43,025' (logging's asctime) as seconds since the epoch."""
    base, _, ms = stamp.partition(",")
    return time.mktime(time.strptime(base, "%Y-%m-%d %H:%M:%S")) + int(ms or 0) / 1000


def is_guardian(proc: psutil.Process) -> bool:
    return GUARDIAN_SCRIPT in proc.cmdline()


def guardian_of(master_pid: int) -> psutil.Process | None:
    """The guardian of that master: a fork of the sh it started, so not its child (its cmdline ends in the master's pid)."""
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if GUARDIAN_SCRIPT in cmd and cmd[-1] == str(master_pid) and p.pid != master_pid:
            return p
    return None


def bot(name: str, *args: object) -> list[str]:
    """argv running one of tests/integration/bots/NAME.py with this interpreter."""
    return [PY, str(BOTS / f"{name}.py"), *map(str, args)]


def as_text(row: dict) -> dict:
    """A `status --json` row with health and last_exit as the table shows them (for assertions on their text)."""
    import msgspec

    from supervisor.control.protocol import HealthState, LastExit
    from supervisor.control.render import exit_text, health_text

    return {**row, "health": health_text(msgspec.convert(row["health"], HealthState)) if row["health"] else None,
            "last_exit": exit_text(msgspec.convert(row["last_exit"], LastExit)) if row["last_exit"] else None}


def wait_until(check: Callable[[], object], timeout: float, what: str) -> object:
    """Poll `check` until it returns something truthy; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(POLL)


def token_procs(token: str) -> list[psutil.Process]:
    """Every live (non-zombie) process carrying this test's token in its environment."""
    found = []
    for p in psutil.process_iter(["pid"]):
        if p.pid == os.getpid():
            continue
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                continue
            if p.environ().get("SUPCTL_TEST_TOKEN") == token:
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


class Master:
    """One `supctl start -f` on tmp_path/procfile.toml, its files and waits on them."""

    def __init__(self, tmp_path: Path, text: str, token: str, prefix: list[str] | None = None) -> None:
        self.prefix = prefix or []
        """Run the master (and its `ctl` verbs) under this, e.g. `ip netns exec NS`."""
        self.dir = tmp_path
        self.procfile = tmp_path / "procfile.toml"
        self.procfile.write_text(textwrap.dedent(text).lstrip("\n"))
        self.state_dir = tmp_path / "state"
        self.logs = self.state_dir / "logs"
        self.log = self.logs / "supervisor.log"
        self.token = token
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, preexec: Callable[[], None] | None = None) -> Master:
        env = {**os.environ, "SUPCTL_TEST_TOKEN": self.token}
        env.pop("SUPCTL_PROCFILE", None)
        before = sum("starting procfile" in line for line in self.lines())  # a master started earlier in this dir
        with open(self.dir / "master.out", "wb") as out:
            self.proc = subprocess.Popen([*self.prefix, *SUPCTL, "start", "-f", str(self.procfile)], cwd=self.dir, env=env,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True, preexec_fn=preexec)
        self.ps = psutil.Process(self.proc.pid)
        self.wait_line(r"master pid \d+ starting procfile", count=before + 1)
        return self

    def env(self) -> dict[str, str]:
        """The environment a `supctl` verb needs to find this master."""
        return {**os.environ, "SUPCTL_PROCFILE": str(self.procfile)}

    def ctl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run one `supctl` verb against this master and capture its output."""
        return subprocess.run([*self.prefix, *SUPCTL, *args], env=self.env(), capture_output=True, text=True, timeout=timeout)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def output(self) -> str:
        return (self.dir / "master.out").read_text(errors="replace")

    # --- reading files -------------------------------------------------------------------
    def text(self, path: Path | None = None) -> str:
        try:
            return (path or self.log).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def json_lines(self, name: str) -> list[dict]:
        """The JSON objects a bot printed, one a line, in its log (other lines passed over)."""
        return [json.loads(line) for line in self.lines(self.logs / f"{name}.log") if line.startswith("{")]

    def lines(self, path: Path | None = None) -> list[str]:
        return self.text(path).splitlines()

    def journal(self) -> list[JournalLine]:
        """logs/events.jsonl, the master's structured stream of transitions and events; a half-written last line is
        left for the next read."""
        return [JOURNAL.decode(line) for line in self.lines(self.logs / "events.jsonl") if line.endswith("}")]

    def transitions(self, name: str | None = None) -> list[Transition]:
        out = []
        for i, entry in enumerate(self.journal()):
            if (t := entry.transition) is None:
                continue
            full = f"{t.bot}:{t.instance}"
            if name is None or name in (full, t.bot):
                out.append(Transition(t.at, full, t.old, t.new, t.reason, i, t.pid))
        return out

    def events(self, name: str | None = None) -> list[tuple[int, ProcessEvent]]:
        """Process events with their journal index, for `name` (bot or bot:k) or all."""
        return [(i, e) for i, entry in enumerate(self.journal()) if (e := entry.event) is not None
                and (name is None or name in (e.bot, f"{e.bot}:{e.instance}"))]

    # --- waits -----------------------------------------------------------------------------
    def wait_line(self, pattern: str, count: int = 1, path: Path | None = None, timeout: float = 15.0) -> list[re.Match[str]]:
        """Follow a file (supervisor.log by default) until `count` lines match `pattern`; returns the matches."""
        rx = re.compile(pattern)
        target = path or self.log

        def check():
            dead = self._dead()  # looked at before reading, so a master that just exited gets a last read
            found = [m for line in self.lines(target) if (m := rx.search(line))]
            if len(found) >= count:
                return found
            self._fail_if(dead, f"{pattern!r} in {target.name}")
            return None

        return wait_until(check, timeout, f"{count} line(s) matching {pattern!r} in {target}")  # type: ignore[return-value]

    def wait_transition(self, name: str, new: str, count: int = 1, old: str | None = None, timeout: float = 15.0) -> list[Transition]:
        """Until `name` (bot or bot:k) has entered state `new` `count` times."""

        def check():
            dead = self._dead()
            found = [t for t in self.transitions(name) if t.new == new and (old is None or t.old == old)]
            if len(found) >= count:
                return found
            self._fail_if(dead, f"{name} -> {new}")
            return None

        return wait_until(check, timeout, f"{count}x {name} -> {new}")  # type: ignore[return-value]

    def _dead(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def _fail_if(self, dead: bool, what: str) -> None:
        if dead:
            assert self.proc is not None
            pytest.fail(f"master exited with {self.proc.returncode} while waiting for {what}:\n{self.output()[-3000:]}")

    # --- processes -------------------------------------------------------------------------
    def children(self) -> list[psutil.Process]:
        return self.ps.children()

    def bot_pids(self) -> list[int]:
        """Direct children of the master that are bots (the guardian excluded)."""
        out = []
        for c in self.children():
            try:
                if not is_guardian(c):
                    out.append(c.pid)
            except psutil.NoSuchProcess:
                pass
        return out

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"master did not exit within {timeout}s:\n{self.output()[-3000:]}")

    def stop(self, timeout: float = 20.0) -> int:
        """Graceful: SIGTERM and wait for the exit status."""
        self.signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def cleanup(self) -> list[str]:
        """Kill the master's group, give the guardian its chance, then kill and report whatever is left."""
        if self.proc is None:
            return []
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(10)
        left = token_procs(self.token)
        _, alive = psutil.wait_procs(left, timeout=5)
        report = []
        for p in alive:
            try:
                report.append(f"pid {p.pid}: {' '.join(p.cmdline())}")
                p.kill()
            except psutil.NoSuchProcess:
                pass
        return report


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def toml_argv(argv: list[str]) -> str:
    """An argv as a TOML array literal."""
    return "[" + ", ".join('"' + a.replace("\\", "\\\\").replace('"', '\\"') + '"' for a in argv) + "]"


def cgroups_unusable() -> str | None:
    """Why this machine cannot run cgroup mode, or None when it can."""
    try:
        cgroups.probe()
    except cgroups.Unusable as e:
        return str(e)
    return None
