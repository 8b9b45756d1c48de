"""`supctl status` against `supervisorctl status`, 100 bots / 100 programs, median wall time in the same run.

Run: .venv/bin/python bench/cli.py [--bots 100] [--runs 30]
Both tools are pip-installed the way users install them (supctl as a regular, non-editable
package) into throwaway venvs under bench/.venvs (supctl's rebuilt each run), so neither pays for a
development install.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from baseline import ROOT, Supervisord, venv_with, wait_until


def median_ms(argv: list[str], runs: int, env: dict[str, str] | None = None) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, check=False)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def supervisord_setup(tmp: Path, n: int) -> tuple[list[str], Supervisord]:
    programs = "".join(f"[program:bot{i}]\ncommand=sleep 3600\nstartsecs=0\n\n" for i in range(n))
    sv = Supervisord(tmp, programs)
    sv.start()
    ctl = sv.ctl("status")
    wait_until(lambda: subprocess.run(ctl, capture_output=True, text=True).stdout.count("RUNNING") == n, 120, "supervisord programs")
    return ctl, sv


def supctl_setup(tmp: Path, n: int) -> tuple[Path, dict[str, str]]:
    supctl = venv_with("supctl", str(ROOT), fresh=True) / "bin/supctl"
    procfile = tmp / "procfile.toml"
    bots = "".join(f'[bots.bot{i}]\ncmd = ["sleep", "3600"]\nstart_grace = "100ms"\n' for i in range(n))
    procfile.write_text(f'[supervisor]\nstate_dir = "state"\n{bots}')
    env = {**os.environ, "SUPCTL_PROCFILE": str(procfile)}
    subprocess.run([str(supctl), "start"], env=env, check=True, stdout=subprocess.DEVNULL)
    wait_until(lambda: subprocess.run([str(supctl), "status"], capture_output=True, text=True, env=env).stdout.count("RUNNING") == n,
               60, "supctl bots")
    return supctl, env


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bots", type=int, default=100)
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        ctl, sv = supervisord_setup(tmp, args.bots)
        supctl, env = supctl_setup(tmp, args.bots)
        ours = [str(supctl), "status"]
        try:
            rounds = [(median_ms(ours, args.runs // 3, env), median_ms(ctl, args.runs // 3)) for _ in range(3)]
            supctl_ms = statistics.median(r[0] for r in rounds)
            sv_ms = statistics.median(r[1] for r in rounds)
            py_ms = median_ms([sys.executable, "-c", "pass"], args.runs // 3)
        finally:
            subprocess.run([str(supctl), "shutdown"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            sv.stop()
    print(f"{'command':34} {'median ms':>10}")
    print(f"{'supctl status (' + str(args.bots) + ' bots)':34} {supctl_ms:10.1f}")
    print(f"{'supervisorctl status (' + str(args.bots) + ')':34} {sv_ms:10.1f}")
    print(f"{'python3 -c pass (floor)':34} {py_ms:10.1f}")
    print(f"ratio supctl / supervisorctl: {supctl_ms / sv_ms:.2f} (target <= 0.50)")


if __name__ == "__main__":
    main()
