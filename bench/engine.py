"""The process engine against supervisord and pm2 and against the floors, all measured in the same run.

Run: .venv/bin/python bench/engine.py [--instances 50] [--kills 30] [--idle 30] [--mib 200] [--rounds 3]
     .venv/bin/python bench/engine.py --instances 1000          (the 1,000-bot run)

supctl is pip-installed into bench/.venvs/supctl as users install it (compiled bytecode, no editable
hook); supervisord comes from PyPI into bench/.venvs/supervisor, pm2 from npm into bench/.venvs/pm2
(PM2_HOME in the run's temp dir). The floors use supctl's venv interpreter:
  Popen loop  a Python script that starts the N children with subprocess.Popen exactly as supctl does
              (new session, stdin /dev/null, stdout and stderr pipes), launched the way the masters are.
  Popen loop + stack  the same loop importing asyncio, uvloop and msgspec first: what a master built on them
              cannot go below, so the part of the start gap that is supctl's own.
  bare stack  a process that imports only asyncio, uvloop, msgspec and psutil and idles in uvloop's loop.
  Popen once  the restarted child started directly with subprocess.Popen, spawn -> its first statement.

  start     launch -> all N children exec'd (each child is `sh -c 'echo x >> STAMPS; exec sleep 3600'`; the
            time is the stamp file's mtime once it holds N stamps). supctl both ways: `start -f` and the
            daemonizing `start`; supervisord -n; `pm2 start` (daemonizing, its God daemon included).
            Median of --rounds rounds, the five launchers interleaved in each round.
  fleet     each master runs N idle children plus one crasher; all three side by side with the bare stack:
            RSS/USS at the end and CPU seconds over --idle s; then --kills SIGKILLs of each crasher (its first
            statement stamps time.time_ns(); kill -> new stamp), interleaved kill by kill with a Popen-once
            sample; then `status` (and --json) of each CLI, interleaved; then the last 10 lines of every log.
  memory    supctl masters with 100 and 1,000 idle `sleep` children beside the bare stack: what the master
            costs above the interpreter and its libraries, and per extra instance.
  flood     one child writes --mib MiB in 4 KiB lines; its start (stamped by the sh that execs it) -> the log
            holds every byte; then every line is compared with what was written. Median of --rounds
            rounds, the floods interleaved in each.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from baseline import ROOT, Pm2, Supervisord, median_ms, supctl_venv, wait_until

sys.path.insert(0, str(ROOT / "tests" / "integration" / "bots"))
from flood import LINE, expected  # noqa: E402

STAMPER = """import time; t = time.time_ns()
import os, signal, sys
with open(sys.argv[1], "a") as f:
    f.write(f"{os.getpid()} {t}\\n")
signal.pause()
"""
POPEN_LOOP = """import signal, subprocess, sys
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
n, stamps = int(sys.argv[1]), sys.argv[2]
argv = ["/bin/sh", "-c", f"echo x >> {stamps}; exec sleep 3600"]
kids = [subprocess.Popen(argv, bufsize=0, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         start_new_session=True) for _ in range(n)]
signal.sigwait([signal.SIGTERM])
for k in kids:
    k.kill()
for k in kids:
    k.wait()
"""
BARE = """import asyncio, uvloop, msgspec, psutil
async def idle() -> None:
    await asyncio.Event().wait()
uvloop.run(idle())
"""
MIB = 1 << 20
GUARDIAN = "guardian.sh"


def sleeper_cmd(stamps: Path) -> str:
    return f"echo x >> {stamps}; exec sleep 3600"


class Supctl:
    """supctl (the installed one) on a generated procfile in its own dir; foreground or daemonizing."""

    def __init__(self, venv: Path, d: Path, bots: str, foreground: bool = True) -> None:
        d.mkdir(parents=True, exist_ok=True)
        self.supctl = str(venv / "bin" / "supctl")
        self.procfile = d / "procfile.toml"
        self.procfile.write_text(f'[supervisor]\nstate_dir = "state"\n{bots}')
        self.foreground = foreground
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> subprocess.Popen[bytes]:
        argv = [self.supctl, "start", *(["-f"] if self.foreground else []), str(self.procfile)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        return self.proc

    def ctl(self, *args: str) -> list[str]:
        return [self.supctl, *args, "-c", str(self.procfile)]

    @property
    def pid(self) -> int:
        if self.foreground:
            assert self.proc is not None
            return self.proc.pid
        return int((self.procfile.parent / "state" / "master.pid").read_text().split(",")[0].strip("[ "))

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.foreground:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
        else:
            self.proc.wait(120)
            subprocess.run(self.ctl("shutdown"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        self.proc.wait(120)
        self.proc = None


class PopenLoop:
    """The start floor: POPEN_LOOP under the same interpreter, launched like the masters; with `stack`, the loop
    imports asyncio, uvloop and msgspec first (what any master built on them pays before its first spawn)."""

    def __init__(self, python: Path, d: Path, n: int, stamps: Path, stack: bool = False) -> None:
        d.mkdir(parents=True, exist_ok=True)
        (d / "loop.py").write_text(("import asyncio, uvloop, msgspec\n" if stack else "") + POPEN_LOOP)
        self.argv = [str(python), str(d / "loop.py"), str(n), str(stamps)]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> subprocess.Popen[bytes]:
        self.proc = subprocess.Popen(self.argv, start_new_session=True)
        return self.proc

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(120)
            self.proc = None


Master = Supctl | Supervisord | Pm2 | PopenLoop


def supctl_sleepers(stamps: Path, n: int) -> str:
    return f'[bots.idle]\ncmd = ["/bin/sh", "-c", "{sleeper_cmd(stamps)}"]\ninstances = {n}\nstart_grace = "0s"\n'


def sv_sleepers(stamps: Path, n: int) -> str:
    return (f"[program:idle]\ncommand=/bin/sh -c '{sleeper_cmd(stamps)}'\nnumprocs={n}\n"
            "process_name=%(program_name)s-%(process_num)d\nstartsecs=0\n")


def pm2_sleepers(stamps: Path, n: int) -> dict[str, object]:
    return {"name": "idle", "script": "/bin/sh", "args": ["-c", sleeper_cmd(stamps)], "interpreter": "none",
            "instances": n, "exec_mode": "fork"}


# -- start -----------------------------------------------------------------------------------

def all_stamped(stamps: Path, n: int, t0: float, timeout: float) -> float:
    """Seconds from t0 to the write of the n-th 2-byte stamp (the file's mtime then)."""
    wait_until(lambda: stamps.exists() and stamps.stat().st_size >= 2 * n, timeout, f"{n} children exec'd", every=0.005)
    return stamps.stat().st_mtime_ns / 1e9 - t0


def cpu_s(pid: int) -> float:
    return sum(psutil.Process(pid).cpu_times()[:2])


def launcher_cpu(m: Master) -> float:
    """CPU seconds the launcher has used so far: the process itself, or for the daemonizing ones the command
    (reaped here with its rusage, its own forks included) plus the daemon it left behind."""
    assert m.proc is not None
    if isinstance(m, (PopenLoop, Supervisord)) or (isinstance(m, Supctl) and m.foreground):
        return cpu_s(m.proc.pid)
    _, status, ru = os.wait4(m.proc.pid, 0)
    m.proc.returncode = os.waitstatus_to_exitcode(status)
    return ru.ru_utime + ru.ru_stime + cpu_s(m.pid)


def start_round(tmp: Path, venv: Path, n: int, r: int, with_pm2: bool) -> dict[str, tuple[float, float]]:
    """One start of each launcher, each stopped (and its children gone) before the next begins."""
    def make(name: str, stamps: Path) -> Master:
        d = tmp / f"start-{name}-{r}"
        if name in ("floor", "floor+stack"):
            return PopenLoop(venv / "bin" / "python", d, n, stamps, stack=name == "floor+stack")
        if name in ("supctl -f", "supctl"):
            return Supctl(venv, d, supctl_sleepers(stamps, n), foreground=name == "supctl -f")
        d.mkdir(parents=True)
        if name == "supervisord":
            return Supervisord(d, sv_sleepers(stamps, n))
        return Pm2(d, [pm2_sleepers(stamps, n)])

    names = ["floor", "floor+stack", "supctl -f", "supctl", "supervisord"] + (["pm2"] if with_pm2 else [])
    names = names[r % len(names):] + names[: r % len(names)]  # rotate, so no launcher always goes first
    out = {}
    for name in names:
        stamps = tmp / f"start-{name.replace(' ', '')}-{r}.stamps"
        m = make(name, stamps)
        t0 = time.time()
        m.start()
        try:
            step(f"  {name}")
            wall = all_stamped(stamps, n, t0, 60 + n * 0.3)
            out[name] = (wall, launcher_cpu(m))
        finally:
            m.stop()
        time.sleep(1)  # let the stopped children's exits settle before the next launcher
    return out


# -- fleet: idle cost, restart latency, status, logs ------------------------------------------

def stamps_of(path: Path) -> list[tuple[int, int]]:
    try:
        return [(int(p), int(t)) for p, t in (ln.split() for ln in path.read_text().splitlines())]
    except FileNotFoundError:
        return []


def kill_once(stamp_file: Path) -> float:
    """SIGKILL the newest stamped pid, wait for the next stamp; milliseconds from kill to stamp."""
    wait_until(lambda: stamps_of(stamp_file), 60, f"a first stamp in {stamp_file}", every=0.005)
    seen = stamps_of(stamp_file)
    time.sleep(0.05)  # let the master finish its bookkeeping for the new child
    t0 = time.time_ns()
    os.kill(seen[-1][0], signal.SIGKILL)
    wait_until(lambda: len(stamps_of(stamp_file)) > len(seen), 30, f"the restarted child in {stamp_file}", every=0.001)
    return (stamps_of(stamp_file)[-1][1] - t0) / 1e6


def popen_once(python: Path, tmp: Path) -> float:
    """The restart floor: the same child started with subprocess.Popen, spawn -> stamp."""
    stamp_file = tmp / "floor.stamps"
    seen = len(stamps_of(stamp_file))
    t0 = time.time_ns()
    child = subprocess.Popen([str(python), "-S", str(tmp / "stamper.py"), str(stamp_file)])
    wait_until(lambda: len(stamps_of(stamp_file)) > seen, 30, "the Popen child", every=0.001)
    ms = (stamps_of(stamp_file)[-1][1] - t0) / 1e6
    child.kill()
    child.wait()
    return ms


def idle_cost(pids: dict[str, int], seconds: float) -> dict[str, tuple[float, float, float]]:
    """(RSS MiB, USS MiB at the end, CPU seconds used) per process, all sampled in the same window.

    USS leaves out pages shared with other processes (libpython, libcrypto, ...), which RSS counts."""
    procs = {name: psutil.Process(pid) for name, pid in pids.items()}
    time.sleep(2)  # past start-up work
    before = {name: sum(p.cpu_times()[:2]) for name, p in procs.items()}
    time.sleep(seconds)
    cpu = {name: sum(p.cpu_times()[:2]) - before[name] for name, p in procs.items()}
    mem = {name: p.memory_full_info() for name, p in procs.items()}
    return {name: (mem[name].rss / MIB, mem[name].uss / MIB, cpu[name]) for name in procs}


def interleaved(cmds: dict[str, tuple[list[str], dict[str, str] | None]], runs: int) -> dict[str, float]:
    """Median of per-round medians, the commands taking turns round by round."""
    rounds: dict[str, list[float]] = {k: [] for k in cmds}
    for _ in range(3):
        for k, (argv, env) in cmds.items():
            rounds[k].append(median_ms(argv, max(1, runs // 3), env))
    return {k: statistics.median(v) for k, v in rounds.items()}


def fleet(tmp: Path, venv: Path, n: int, a: argparse.Namespace) -> dict[str, object]:
    py = venv / "bin" / "python"
    stamper = f"{tmp / 'stamper.py'}"
    d = {k: tmp / f"fleet-{k}" for k in ("supctl", "supervisord", "pm2")}
    for p in d.values():
        p.mkdir()
    crash = {k: d[k] / "crash.stamps" for k in d}
    idle = {k: d[k] / "idle.stamps" for k in d}
    masters: dict[str, Master] = {
        "supctl": Supctl(venv, d["supctl"], supctl_sleepers(idle["supctl"], n) + f"""[bots.crash]
cmd = ["{py}", "-S", "{stamper}", "{crash['supctl']}"]
backoff = {{ initial = "0s" }}
restart_limit = {{ count = {a.kills * 2}, window = "1h" }}
"""),
        "supervisord": Supervisord(d["supervisord"], sv_sleepers(idle["supervisord"], n) + f"""
[program:crash]
command={py} -S {stamper} {crash['supervisord']}
startsecs=0
autorestart=true
startretries={a.kills * 2}
"""),
    }
    if a.pm2:
        masters["pm2"] = Pm2(d["pm2"], [pm2_sleepers(idle["pm2"], n), {
            "name": "crash", "script": str(py), "args": ["-S", stamper, str(crash["pm2"])], "interpreter": "none",
            "autorestart": True, "restart_delay": 0, "min_uptime": 100, "max_restarts": a.kills * 2 + 10}])
    bare = subprocess.Popen([str(py), "-c", BARE])
    out: dict[str, object] = {}
    try:
        for name, m in masters.items():
            step(f"fleet: starting {name}")
            m.start()
            all_stamped(idle[name], n, time.time(), 60 + n * 0.3)
        pids = {name: m.pid if isinstance(m, (Pm2, Supctl)) else m.proc.pid for name, m in masters.items()}  # type: ignore[union-attr]
        guardian = guardian_of(pids["supctl"])
        step(f"fleet: {a.idle:.0f}s idle")
        out["idle"] = idle_cost({**pids, "guardian": guardian.pid, "bare": bare.pid}, a.idle)

        step(f"fleet: {a.kills} kills each")
        lat: dict[str, list[float]] = {k: [] for k in [*masters, "floor"]}
        for _ in range(a.kills):
            lat["floor"].append(popen_once(py, tmp))
            for name in masters:
                lat[name].append(kill_once(crash[name]))
        out["restart"] = lat

        step("fleet: status and logs")
        sup = masters["supctl"]
        assert isinstance(sup, Supctl)
        cmds: dict[str, tuple[list[str], dict[str, str] | None]] = {
            "supctl": (sup.ctl("status"), None), "supctl --json": (sup.ctl("status", "--json"), None),
            "supervisord": (masters["supervisord"].ctl("status"), None),  # type: ignore[union-attr]
        }
        logs = {"supctl": (sup.ctl("logs", "-n", "10"), None)}
        if a.pm2:
            pm2 = masters["pm2"]
            assert isinstance(pm2, Pm2)
            cmds["pm2"] = (pm2.ctl("ls"), pm2.env)
            cmds["pm2 jlist"] = (pm2.ctl("jlist"), pm2.env)
            logs["pm2"] = (pm2.ctl("logs", "--nostream", "--lines", "10"), pm2.env)
        cmds["python -c pass"] = ([str(py), "-c", "pass"], None)
        out["status"] = interleaved(cmds, a.status_runs)
        out["logs"] = interleaved(logs, 3)
    finally:
        for m in masters.values():
            m.stop()
        bare.terminate()
        bare.wait()
    return out


def guardian_of(master: int) -> psutil.Process:
    """A master's guardian: a fork of the sh it starts (not its child); its cmdline ends in the master's pid."""
    return next(p for p in psutil.process_iter(["cmdline"]) if p.pid != master and (cmd := p.info["cmdline"] or [])
                and cmd[0] == "/bin/sh" and cmd[1].endswith(GUARDIAN) and cmd[-1] == str(master))


# -- guardian: its memory with 0, 10 and 1,000 tracked process groups ---------------------------

GUARDIAN_PROBE = """import asyncio, json, logging, sys, psutil
from supervisor.engine.guardian_link import Guard

async def main(n: int) -> None:
    guard = Guard(logging.getLogger("bench"))
    guard.start()
    guard.marker("SUPCTL_FLEET=bench")
    for g in range(1_000_000, 1_000_000 + n):
        guard(g, True)
    told = len(guard._snapshot())
    proc = psutil.Process(guard.pid)
    while guard.backlog or proc.io_counters().read_chars < told:  # every line read by the guardian
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.5)  # idle: waiting in read, as it does for the master's whole life
    m = proc.memory_full_info()
    print(json.dumps([m.rss, m.pss, m.uss]))
    guard.close()

asyncio.run(main(int(sys.argv[1])))
"""
SH_FLOOR = "sh -c 'read x' (a fresh sh waiting on a pipe)"


def guardian_memory(venv: Path, sizes: tuple[int, ...] = (0, 10, 1000)) -> dict[str, tuple[float, float, float]]:
    """(RSS, PSS, USS) in MiB of the guardian as the master runs it (its real Guard and guardian.sh), told of each
    size's number of process groups; and a fresh `sh` reading a pipe, the floor of a guardian that is not a fork."""
    out = {}
    for n in sizes:
        probe = subprocess.run([str(venv / "bin" / "python"), "-c", GUARDIAN_PROBE, str(n)], capture_output=True, text=True,
                               check=True)
        rss, pss, uss = (v / MIB for v in json.loads(probe.stdout))
        out[f"{n:,} groups"] = (rss, pss, uss)
    sh = subprocess.Popen(["/bin/sh", "-c", "read x"], stdin=subprocess.PIPE)
    try:
        time.sleep(0.5)
        m = psutil.Process(sh.pid).memory_full_info()
        out[SH_FLOOR] = (m.rss / MIB, m.pss / MIB, m.uss / MIB)
    finally:
        assert sh.stdin is not None
        sh.stdin.close()
        sh.wait()
    return out


# -- memory: 100 and 1,000 -------------------------------------------------------------------

def memory(tmp: Path, venv: Path, sizes: tuple[int, ...] = (100, 1000)) -> dict[str, tuple[float, float, float]]:
    masters = {n: Supctl(venv, tmp / f"memory-{n}", f'[bots.idle]\ncmd = ["sleep", "3600"]\ninstances = {n}\nstart_grace = "0s"\n')
               for n in sizes}
    bare = subprocess.Popen([str(venv / "bin" / "python"), "-c", BARE])
    try:
        for m in masters.values():
            m.start()
        for n, m in masters.items():
            wait_until(lambda: sum(1 for c in psutil.Process(m.pid).children() if c.name() == "sleep") >= n, 60 + n * 0.3,
                       f"{n} sleep children", every=0.2)
        return idle_cost({**{str(n): m.pid for n, m in masters.items()}, "bare": bare.pid}, 3)
    finally:
        for m in masters.values():
            m.stop()
        bare.terminate()
        bare.wait()


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


def prefix_len(log: Path) -> int:
    """Bytes in front of each flood line (the timestamp, when on): the first line starts with its block number."""
    with log.open("rb") as f:
        head = f.read(LINE + 64)
    return max(0, head.find(b"00000000 "))


def flood_one(name: str, tmp: Path, venv: Path, total: int, timestamps: bool = False) -> tuple[float, int]:
    d = tmp / f"flood-{name}"
    d.mkdir()
    start = d / "start"
    sh = f"date +%s.%N > {start}; exec {venv / 'bin/python'} {ROOT / 'tests/integration/bots/flood.py'} {total}"
    m: Master
    if name.startswith("supctl"):
        m = Supctl(venv, d, f"""[bots.flood]
cmd = ["/bin/sh", "-c", "{sh}"]
restart = "never"
start_grace = "100ms"
log = {{ max_size = "{3 * total}B", backups = 1, timestamps = {str(timestamps).lower()} }}
""")
        log = d / "state" / "logs" / "flood.log"
    elif name.startswith("supervisord"):
        log = d / "flood.log"
        m = Supervisord(d, f"[program:flood]\ncommand=/bin/sh -c '{sh.replace('%', '%%')}'\nstdout_logfile={log}\nstdout_logfile_maxbytes=0\n"
                           "autorestart=false\nstartsecs=0\n")
    else:
        log = d / "flood.log"
        m = Pm2(d, [{"name": "flood", "script": "/bin/sh", "args": ["-c", sh], "interpreter": "none", "autorestart": False,
                     "out_file": str(log), "error_file": str(d / "flood.err")}])
    m.start()
    try:
        wait_until(lambda: log.exists() and log.stat().st_size >= total + (total // LINE) * prefix_len(log), 300,
                   f"the flood in {log}", every=0.002)
        t1 = time.time()
        rate = total / MIB / (t1 - float(start.read_text()))
        return rate, -1 if timestamps else lines_lost(log, total)
    finally:
        m.stop()


# -- report ----------------------------------------------------------------------------------

def step(what: str) -> None:
    print(f"... {what}", file=sys.stderr, flush=True)


def fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def row(what: str, vals: tuple[float | None, float | None, float | None, float | None], unit: str, check: str = "") -> str:
    return f"{what:<40} " + " ".join(f"{fmt(v):>11}" for v in vals) + f"  {unit:<6} {check}"


def check(label: str, ratio: float, limit: float, le: bool = True) -> str:
    ok = ratio <= limit if le else ratio >= limit
    return f"{label} {ratio:.2f}x {'<=' if le else '>='} {limit}x {'ok' if ok else 'MISSED'}"


def pct(xs: list[float], q: float) -> float:
    return statistics.quantiles(xs, n=100, method="inclusive")[int(q) - 1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=50)
    ap.add_argument("--kills", type=int, default=30)
    ap.add_argument("--idle", type=float, default=30.0)
    ap.add_argument("--mib", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3, help="start rounds (median)")
    ap.add_argument("--status-runs", type=int, default=15)
    ap.add_argument("--no-pm2", dest="pm2", action="store_false", help="leave pm2 out (no node on the machine)")
    ap.add_argument("--only", choices=["start", "fleet", "memory", "flood", "guardian"], action="append",
                    help="run only these parts (repeatable); all by default")
    a = ap.parse_args()
    parts = set(a.only or ["start", "fleet", "memory", "flood", "guardian"])
    n = a.instances
    step("installing supctl into bench/.venvs/supctl")
    venv = supctl_venv()
    with tempfile.TemporaryDirectory(prefix="supctl-bench-") as tmpdir:
        tmp = Path(tmpdir)
        (tmp / "stamper.py").write_text(STAMPER)
        starts: dict[str, list[tuple[float, float]]] = {}
        if "start" in parts:
            for r in range(a.rounds):
                step(f"start {n}, round {r + 1} of {a.rounds}")
                for k, v in start_round(tmp, venv, n, r, a.pm2).items():
                    starts.setdefault(k, []).append(v)
        fl = fleet(tmp, venv, n, a) if "fleet" in parts else None
        if "memory" in parts:
            step("memory: supctl with 100 and 1,000 idle bots beside the bare stack")
        mem = memory(tmp, venv) if "memory" in parts else None
        floods: dict[str, tuple[float, int]] = {}
        if "flood" in parts:
            runs: dict[str, list[tuple[float, int]]] = {}
            for r in range(a.rounds):  # a 200 MiB flood lasts a fraction of a second: one run is mostly noise
                for name in ["supctl", "supctl-ts", "supervisord"] + (["pm2"] if a.pm2 else []):
                    step(f"log flood {a.mib} MiB: {name}, round {r + 1} of {a.rounds}")
                    runs.setdefault(name, []).append(flood_one(f"{name}-{r}", tmp, venv, a.mib * MIB, timestamps=name == "supctl-ts"))
            floods = {k: (statistics.median(rate for rate, _ in v), max(lost for _, lost in v)) for k, v in runs.items()}
    report(a, starts, fl, mem, floods)
    if "guardian" in parts:
        step("guardian: its memory told of 0, 10 and 1,000 process groups")
        print("\nguardian memory (MiB), as the master runs it; target RSS <= 1.5")
        print(f"  {'told of':<48} {'RSS':>6} {'PSS':>6} {'USS':>6}")
        for what, (rss, pss, uss) in guardian_memory(venv).items():
            verdict = "" if what == SH_FLOOR else ("ok" if rss <= 1.5 else "MISSED")
            print(f"  {what:<48} {rss:6.2f} {pss:6.2f} {uss:6.2f}  {verdict}")


def report(a: argparse.Namespace, starts: dict[str, list[tuple[float, float]]], fl: dict[str, object] | None,
           mem: dict[str, tuple[float, float, float]] | None, floods: dict[str, tuple[float, int]]) -> None:
    n = a.instances
    med = {k: statistics.median(w for w, _ in v) for k, v in starts.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in starts.items()}
    print(f"\nprocess engine, {n} instances: supctl, supervisord, pm2 and the floors in the same run ({os.cpu_count()} cores)")
    print(f"{'measure':<40} {'supctl':>11} {'supervisord':>11} {'pm2':>11} {'floor':>11}  {'unit':<6} target")
    if med:
        f = med["floor"]
        print(row(f"start {n}: launch -> all exec'd (-f)", (med["supctl -f"], med["supervisord"], med.get("pm2"), f), "s",
                  check("supctl -f / Popen loop", med["supctl -f"] / f, 1.2)))
        print(row(f"start {n}: daemonizing `supctl start`", (med["supctl"], None, None, f), "s",
                  check("supctl / Popen loop", med["supctl"] / f, 1.3)))
        fs = med["floor+stack"]
        print(row("  floor importing asyncio, uvloop, msgspec", (med["supctl -f"], None, None, fs), "s",
                  f"supctl -f / that loop {med['supctl -f'] / fs:.2f}x; the plain loop / it {f / fs:.2f}x"))
        c = cpu["floor"]
        print(row("  CPU used by then (-f)", (cpu["supctl -f"], cpu["supervisord"], cpu.get("pm2"), c), "CPU-s",
                  f"supctl -f / Popen loop {cpu['supctl -f'] / c:.2f}x"))
        print(row("  CPU used by then (daemonizing)", (cpu["supctl"], None, None, c), "CPU-s",
                  f"supctl / Popen loop {cpu['supctl'] / c:.2f}x"))
    if fl is not None:
        lat = fl["restart"]
        idle = fl["idle"]
        st = fl["status"]
        logs = fl["logs"]
        assert isinstance(lat, dict) and isinstance(idle, dict) and isinstance(st, dict) and isinstance(logs, dict)
        fm = statistics.median(lat["floor"])
        print(row(f"restart latency median (under {n})", (statistics.median(lat["supctl"]), statistics.median(lat["supervisord"]),
                  statistics.median(lat["pm2"]) if "pm2" in lat else None, fm), "ms",
                  check("supctl / Popen once", statistics.median(lat["supctl"]) / fm, 1.0)))
        print(row("restart latency p95", (pct(lat["supctl"], 95), pct(lat["supervisord"], 95),
                  pct(lat["pm2"], 95) if "pm2" in lat else None, pct(lat["floor"], 95)), "ms"))
        g = idle["guardian"]
        print(row(f"master RSS, {n + 1} idle children", (idle["supctl"][0], idle["supervisord"][0],
                  idle["pm2"][0] if "pm2" in idle else None, idle["bare"][0]), "MiB", "floor: bare stack"))
        print(row("master USS (not shared)", (idle["supctl"][1], idle["supervisord"][1],
                  idle["pm2"][1] if "pm2" in idle else None, idle["bare"][1]), "MiB"))
        print(row("  supctl guardian RSS / USS", (g[0], None, None, g[1]), "MiB", "(floor column: its USS)"))
        print(row("  supctl master + guardian RSS", (idle["supctl"][0] + g[0], None, None, None), "MiB"))
        print(row(f"master CPU over {a.idle:.0f}s idle", (idle["supctl"][2] + g[2], idle["supervisord"][2],
                  idle["pm2"][2] if "pm2" in idle else None, idle["bare"][2]), "CPU-s",
                  "supctl (+guardian) = 0 " + ("ok" if idle["supctl"][2] + g[2] < 0.01 else "MISSED")))
        print(row(f"status, {n + 1} instances", (st["supctl"], st["supervisord"], st.get("pm2"), st["python -c pass"]), "ms",
                  check("supctl / supervisorctl", st["supctl"] / st["supervisord"], 0.4)
                  + (" ; < 150 ms " + ("ok" if st["supctl"] < 150 else "MISSED"))))
        print(row("status --json (pm2: jlist)", (st["supctl --json"], None, st.get("pm2 jlist"), st["python -c pass"]), "ms",
                  "< 150 ms " + ("ok" if st["supctl --json"] < 150 else "MISSED")))
        print(row(f"logs: last 10 lines of all {n + 1}", (logs["supctl"], None, logs.get("pm2"), None), "ms"))
    if floods:
        mib = a.mib
        sv = floods["supervisord"][0]
        print(row(f"log flood {mib} MiB, 4 KiB lines", (floods["supctl"][0], sv, floods["pm2"][0] if "pm2" in floods else None, None),
                  "MiB/s", check("supctl / supervisord", floods["supctl"][0] / sv, 1.0, le=False)))
        print(row("log flood, supctl timestamps on", (floods["supctl-ts"][0], None, None, None), "MiB/s",
                  check("on / off", floods["supctl-ts"][0] / floods["supctl"][0], 0.8, le=False)))
        print(f"{'log flood lines lost':<40} {floods['supctl'][1]:>11} {floods['supervisord'][1]:>11} "
              f"{floods['pm2'][1] if 'pm2' in floods else '-':>11} {'-':>11}  lines  0")
    if mem is not None:
        bare, m100, m1000 = mem["bare"], mem["100"], mem["1000"]
        above = (m100[0] - bare[0]) * 1024
        per = (m1000[0] - m100[0]) * MIB / 1024 / 900
        print("\nmaster memory (RSS; USS in brackets), idle `sleep` bots, beside the bare stack in the same window")
        print(f"  bare stack (asyncio, uvloop, msgspec, psutil; idle loop) {bare[0]:7.2f} MiB ({bare[1]:.2f})")
        print(f"  supctl master, 100 bots   {m100[0]:7.2f} MiB ({m100[1]:.2f})   above bare: {above:6.0f} KiB  "
              f"target <= 2048 {'ok' if above <= 2048 else 'MISSED'}")
        print(f"  supctl master, 1,000 bots {m1000[0]:7.2f} MiB ({m1000[1]:.2f})   per extra instance: {per:5.1f} KiB  "
              f"target <= 12 {'ok' if per <= 12 else 'MISSED'}")


if __name__ == "__main__":
    main()
