"""The process engine against supervisord, measured in the same run: restart latency, start-100, idle cost, log flood.

Run: .venv/bin/python bench/engine.py [--kills 50] [--instances 100] [--idle 30] [--mib 200]

supervisord comes from PyPI into bench/.venvs/supervisor (never into the project). Both masters
run in the foreground on the same generated programs:
  restart   SIGKILL a child whose first statement stamps time.time_ns(); kill -> new stamp.
            Floor: the same child spawned directly with subprocess.Popen, one before each kill.
            backoff initial 0.
  start     master launched -> the last "entered RUNNING"/"-> RUNNING" line in its own log,
            100 `sleep` children, startsecs = 0 / start_grace = "0s" (RUNNING once spawned).
  idle      the master process alone (RSS, CPU seconds) over --idle seconds with those children;
            both masters are measured side by side in the same window.
  flood     one child writes --mib MiB in 4 KiB lines; spawn (the master's log line) -> the log
            file holds every byte; then every line is compared with what was written.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from baseline import ROOT, Supervisord, wait_until

from supervisor.engine.guardian_link import GUARDIAN_SCRIPT

sys.path.insert(0, str(ROOT / "tests" / "integration" / "bots"))
from flood import LINE, expected  # noqa: E402

STAMPER = f"""import time; t = time.time_ns()
import os, signal, sys
with open(sys.argv[1], "a") as f:
    f.write(f"{{os.getpid()}} {{t}}\\n")
signal.pause()
"""
MIB = 1 << 20


def log_time(path: Path, needle: str, last: bool = False) -> float:
    """Epoch seconds of the first (or last) line of a master log that contains needle (both use logging's asctime)."""
    lines = [ln for ln in path.read_text().splitlines() if needle in ln]
    if not lines:
        raise SystemExit(f"{path}: no line with {needle!r}")
    stamp = lines[-1 if last else 0][:23]
    base, ms = stamp.split(",")
    return time.mktime(time.strptime(base, "%Y-%m-%d %H:%M:%S")) + int(ms) / 1000


class Supctl:
    """`supctl start -f` on a generated procfile, in its own temp dir."""

    def __init__(self, tmp: Path, bots: str) -> None:
        self.dir = tmp
        self.procfile = tmp / "procfile.toml"
        self.procfile.write_text(f'[supervisor]\nstate_dir = "state"\n{bots}')
        self.log = tmp / "state" / "logs" / "supervisor.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> subprocess.Popen[bytes]:
        self.proc = subprocess.Popen([sys.executable, "-m", "supervisor.cli.main", "start", "-f", str(self.procfile)], cwd=self.dir,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        return self.proc

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)


# -- restart latency -------------------------------------------------------------------------

def stamps(path: Path) -> list[tuple[int, int]]:
    try:
        return [(int(p), int(t)) for p, t in (ln.split() for ln in path.read_text().splitlines())]
    except FileNotFoundError:
        return []


def kill_and_time(stamp_file: Path, kills: int, between: Callable[[], None] = lambda: None) -> list[float]:
    """SIGKILL the newest stamped pid, wait for the next stamp; milliseconds from kill to stamp."""
    out = []
    for _ in range(kills):
        wait_until(lambda: stamps(stamp_file), 30, "a first stamp", every=0.005)
        seen = len(stamps(stamp_file))
        pid = stamps(stamp_file)[-1][0]
        between()
        time.sleep(0.05)  # let the master finish its bookkeeping for the new child
        t0 = time.time_ns()
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: len(stamps(stamp_file)) > seen, 30, "the restarted child", every=0.001)
        out.append((stamps(stamp_file)[-1][1] - t0) / 1e6)
    return out


def popen_once(tmp: Path, out: list[float]) -> None:
    """The floor: the same child started with subprocess.Popen, spawn -> stamp."""
    stamp_file = tmp / "floor.stamps"
    seen = len(stamps(stamp_file))
    t0 = time.time_ns()
    child = subprocess.Popen([sys.executable, "-S", str(tmp / "stamper.py"), str(stamp_file)])
    wait_until(lambda: len(stamps(stamp_file)) > seen, 30, "the Popen child", every=0.001)
    out.append((stamps(stamp_file)[-1][1] - t0) / 1e6)
    child.kill()
    child.wait()


def restart_supctl(tmp: Path, kills: int) -> tuple[list[float], list[float]]:
    """supctl's kills interleaved one by one with floor samples, so drift in the machine hits both alike."""
    d = tmp / "restart-supctl"
    d.mkdir()
    stamp_file = d / "stamps"
    m = Supctl(d, f"""[bots.crash]
cmd = ["{sys.executable}", "-S", "{tmp / 'stamper.py'}", "{stamp_file}"]
backoff = {{ initial = "0s" }}
restart_limit = {{ count = {kills * 2}, window = "1h" }}
""")
    m.start()
    floor: list[float] = []
    try:
        return kill_and_time(stamp_file, kills, lambda: popen_once(tmp, floor)), floor
    finally:
        m.stop()


def restart_supervisord(tmp: Path, kills: int) -> list[float]:
    d = tmp / "restart-sv"
    d.mkdir()
    stamp_file = d / "stamps"
    sv = Supervisord(d, f"""[program:crash]
command={sys.executable} -S {tmp / 'stamper.py'} {stamp_file}
startsecs=0
autorestart=true
startretries={kills * 2}
""")
    sv.start()
    try:
        return kill_and_time(stamp_file, kills)
    finally:
        sv.stop()


# -- start N, then idle ----------------------------------------------------------------------

def sleepers_supctl(tmp: Path, n: int) -> Supctl:
    d = tmp / "start-supctl"
    d.mkdir()
    return Supctl(d, f'[bots.idle]\ncmd = ["sleep", "3600"]\ninstances = {n}\nstart_grace = "0s"\n')


def sleepers_supervisord(tmp: Path, n: int) -> Supervisord:
    d = tmp / "start-sv"
    d.mkdir()
    return Supervisord(d, f"[program:idle]\ncommand=sleep 3600\nnumprocs={n}\nprocess_name=%(program_name)s-%(process_num)d\nstartsecs=0\n")


def time_start(master: Supctl | Supervisord, needle: str, n: int) -> float:
    t0 = time.time()
    master.start()
    wait_until(lambda: master.log.exists() and master.log.read_text().count(needle) >= n, 120, f"{n} RUNNING", every=0.05)
    return log_time(master.log, needle, last=True) - t0


def idle_cost(pids: dict[str, int], seconds: float) -> dict[str, tuple[float, float, float]]:
    """(RSS MiB and USS MiB at the end, CPU seconds used) per master, sampled in the same window.

    USS leaves out pages shared with other processes (libpython, libcrypto, ...), which RSS counts."""
    procs = {name: psutil.Process(pid) for name, pid in pids.items()}
    time.sleep(2)  # past start-up work
    before = {name: sum(p.cpu_times()[:2]) for name, p in procs.items()}
    time.sleep(seconds)
    cpu = {name: sum(p.cpu_times()[:2]) - before[name] for name, p in procs.items()}
    mem = {name: p.memory_full_info() for name, p in procs.items()}
    return {name: (mem[name].rss / MIB, mem[name].uss / MIB, cpu[name]) for name in procs}


# -- log flood -------------------------------------------------------------------------------

def lines_lost(path: Path, total: int) -> int:
    """4 KiB lines of the written stream that are missing or different in the log file."""
    lost = 0
    with path.open("rb") as f:
        for block in expected(total):
            got = f.read(len(block))
            if got != block:
                good = sum(1 for a, b in zip(block.split(b"\n"), got.split(b"\n")) if a == b and a)
                lost += len(block) // LINE - good
    return lost


def flood(master: Supctl | Supervisord, log: Path, needle: str, total: int) -> tuple[float, int]:
    master.start()
    try:
        wait_until(lambda: log.exists() and log.stat().st_size >= total, 300, "the flood in the log", every=0.002)
        t1 = time.time()
        return total / MIB / (t1 - log_time(master.log, needle)), lines_lost(log, total)
    finally:
        master.stop()


def flood_supctl(tmp: Path, total: int) -> tuple[float, int]:
    d = tmp / "flood-supctl"
    d.mkdir()
    m = Supctl(d, f"""[bots.flood]
cmd = ["{sys.executable}", "{ROOT / 'tests/integration/bots/flood.py'}", "{total}"]
restart = "never"
start_grace = "100ms"
log = {{ max_size = "{2 * total}B", backups = 1 }}
""")
    return flood(m, d / "state" / "logs" / "flood.log", "flood:0 STOPPED -> STARTING", total)


def flood_supervisord(tmp: Path, total: int) -> tuple[float, int]:
    d = tmp / "flood-sv"
    d.mkdir()
    sv = Supervisord(d, f"""[program:flood]
command={sys.executable} {ROOT / 'tests/integration/bots/flood.py'} {total}
stdout_logfile={d / 'flood.log'}
stdout_logfile_maxbytes=0
autorestart=false
startsecs=0
""")
    return flood(sv, d / "flood.log", "spawned: 'flood'", total)


# -- report ----------------------------------------------------------------------------------

def step(what: str) -> None:
    print(f"... {what}", file=sys.stderr, flush=True)


def row(what: str, ours: float, theirs: float, unit: str, target: str) -> str:
    ratio = f"{ours / theirs:.2f}x" if theirs else "-"
    return f"{what:<34} {ours:>10.2f} {theirs:>12.2f} {unit:<7} {ratio:>8}  {target}"


def pct(xs: list[float], q: float) -> float:
    return statistics.quantiles(xs, n=100, method="inclusive")[int(q) - 1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--instances", type=int, default=100)
    ap.add_argument("--idle", type=float, default=30.0)
    ap.add_argument("--mib", type=int, default=200)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="supctl-bench-") as tmpdir:
        tmp = Path(tmpdir)
        (tmp / "stamper.py").write_text(STAMPER)

        step(f"restart latency, {a.kills} kills each")
        ours_r, floor = restart_supctl(tmp, a.kills)
        sv_r = restart_supervisord(tmp, a.kills)

        step(f"start {a.instances}, then {a.idle:.0f}s idle")
        ours_m, sv_m = sleepers_supctl(tmp, a.instances), sleepers_supervisord(tmp, a.instances)
        try:
            sv_start = time_start(sv_m, "entered RUNNING state", a.instances)
            ours_start = time_start(ours_m, "-> RUNNING", a.instances)
            assert ours_m.proc and sv_m.proc
            idle = idle_cost({"supctl": ours_m.proc.pid, "supervisord": sv_m.proc.pid}, a.idle)
            guardian = next(c for c in psutil.Process(ours_m.proc.pid).children() if c.cmdline()[-1:] == [GUARDIAN_SCRIPT])
            guardian_mib = guardian.memory_info().rss / MIB
        finally:
            ours_m.stop()
            sv_m.stop()

        step(f"log flood, {a.mib} MiB")
        total = a.mib * MIB
        ours_f, ours_lost = flood_supctl(tmp, total)
        sv_f, sv_lost = flood_supervisord(tmp, total)

    print(f"process engine, supctl vs supervisord in the same run ({os.cpu_count()} cores)")
    print(f"{'measure':<34} {'supctl':>10} {'supervisord':>12} {'unit':<7} {'ratio':>8}  target")
    print(row("restart latency median", statistics.median(ours_r), statistics.median(sv_r), "ms", "(floor below)"))
    print(row("restart latency p95", pct(ours_r, 95), pct(sv_r, 95), "ms", ""))
    print(row(f"start {a.instances} until all RUNNING", ours_start, sv_start, "s", "<= 0.33x"))
    print(row(f"master RSS, {a.instances} idle children", idle["supctl"][0], idle["supervisord"][0], "MiB", "supctl <= 25 MiB"))
    print(row("master USS (not shared)", idle["supctl"][1], idle["supervisord"][1], "MiB", ""))
    print(f"{'  + supctl guardian process RSS':<34} {guardian_mib:>10.2f} {'-':>12} MiB")
    print(row(f"master CPU over {a.idle:.0f}s idle", idle["supctl"][2], idle["supervisord"][2], "CPU-s", "<= 1x"))
    print(row(f"log flood {a.mib} MiB, 4 KiB lines", ours_f, sv_f, "MiB/s", ">= 1x"))
    print(f"{'log flood lines lost':<34} {ours_lost:>10} {sv_lost:>12}")
    fm = statistics.median(floor)
    print(f"restart floor (subprocess.Popen): median {fm:.2f} ms, p95 {pct(floor, 95):.2f} ms; "
          f"supctl median / floor = {statistics.median(ours_r) / fm:.2f}x (target <= 1.3x)")


if __name__ == "__main__":
    main()
