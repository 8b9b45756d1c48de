"""Log throughput: a bot floods 200 MiB to stdout; MiB/s until the log holds every byte.

Run: .venv/bin/python bench/logs.py [--mib 200] [--reps 3]

Rows: two baselines measured in the same run (the writer piped to `cat > file`, and a raw
uvloop subprocess protocol writing each chunk to a file), then a real `supctl start -f`
master with timestamps off and on (rotation at 64MB, 5 backups, so nothing is dropped).
Time runs from just before the writer is spawned (for the master: its STARTING transition)
to the moment the log files hold the whole stream. Median of --reps runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WRITER = ROOT / "tests" / "integration" / "bots" / "flood.py"
LINE = 4096


def wait_size(paths_fn, want: int, timeout: float = 120.0) -> float:
    deadline = time.monotonic() + timeout
    while True:
        size = 0
        for p in paths_fn():
            try:
                size += p.stat().st_size
            except FileNotFoundError:  # renamed by a rotation between glob and stat: look again
                size = -1
                break
        if size >= want:
            return time.time()
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out: {size} of {want} bytes")
        time.sleep(0.002)


def run_cat(total: int, tmp: Path) -> float:
    out = tmp / "cat.log"
    t0 = time.time()
    subprocess.run(f"{sys.executable} {WRITER} {total} | cat > {out}", shell=True, check=True)
    t1 = wait_size(lambda: [out], total)
    out.unlink()
    return t1 - t0


def run_asyncio(total: int, tmp: Path) -> float:
    import uvloop

    out = tmp / "raw.log"

    class Proto(asyncio.SubprocessProtocol):
        def __init__(self, fd: int, done: asyncio.Future) -> None:
            self.fd, self.done = fd, done

        def pipe_data_received(self, fd: int, data: bytes) -> None:
            os.write(self.fd, data)

        def process_exited(self) -> None:
            pass

        def connection_lost(self, exc) -> None:
            self.done.set_result(None)

    async def main() -> float:
        loop = asyncio.get_running_loop()
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        done = loop.create_future()
        t0 = time.time()
        await loop.subprocess_exec(lambda: Proto(fd, done), sys.executable, str(WRITER), str(total),
                                   stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        await done
        os.close(fd)
        return t0

    t0 = uvloop.run(main())
    t1 = wait_size(lambda: [out], total)
    out.unlink()
    return t1 - t0


def run_master(total: int, tmp: Path, timestamps: bool, n: int) -> float:
    d = tmp / f"m{n}{'t' if timestamps else ''}"
    d.mkdir()
    (d / "procfile.toml").write_text(f"""
[supervisor]
state_dir = "state"
[bots.flood]
cmd = ["{sys.executable}", "{WRITER}", "{total}"]
restart = "never"
start_grace = "100ms"
log = {{ max_size = "64MiB", backups = {total // (64 << 20) + 2}, timestamps = {'true' if timestamps else 'false'} }}
""")
    logs = d / "state" / "logs"
    want = total
    if timestamps:
        want += (total // LINE) * (len(datetime.now().astimezone().isoformat(timespec="milliseconds")) + 1)
    proc = subprocess.Popen([sys.executable, "-m", "supervisor.cli.main", "start", "-f", str(d / "procfile.toml")],
                            cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        t1 = wait_size(lambda: list(logs.glob("flood.log*")), want)
        sup = (logs / "supervisor.log").read_text()
        stamp = next(ln for ln in sup.splitlines() if "flood:0 STOPPED -> STARTING" in ln)[:23]
        base, ms = stamp.split(",")
        t0 = time.mktime(time.strptime(base, "%Y-%m-%d %H:%M:%S")) + int(ms) / 1000
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    got = sum(p.stat().st_size for p in logs.glob("flood.log*"))
    if got != want:
        raise SystemExit(f"supctl log holds {got} bytes, expected {want}")
    for p in logs.glob("flood.log*"):
        p.unlink()
    return t1 - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mib", type=int, default=200)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    total = a.mib * 1024 * 1024
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="supctl-bench-") as tmpdir:
        tmp = Path(tmpdir)
        cases = [
            ("baseline: writer | cat > file", lambda i: run_cat(total, tmp)),
            ("baseline: raw uvloop pipe -> file", lambda i: run_asyncio(total, tmp)),
            ("supctl master, timestamps off", lambda i: run_master(total, tmp, False, i)),
            ("supctl master, timestamps on", lambda i: run_master(total, tmp, True, i)),
        ]
        for name, fn in cases:
            secs = statistics.median(fn(i) for i in range(a.reps))
            rows.append((name, a.mib / secs))
    base = rows[1][1]
    print(f"log flood: {a.mib} MiB in 4 KiB lines, median of {a.reps} runs, {os.cpu_count()} cores")
    print(f"{'case':<36} {'MiB/s':>8} {'vs raw uvloop':>14} {'vs cat':>8}")
    for name, rate in rows:
        print(f"{name:<36} {rate:>8.0f} {rate / base:>13.2f}x {rate / rows[0][1]:>7.2f}x")


if __name__ == "__main__":
    main()
