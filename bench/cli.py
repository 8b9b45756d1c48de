"""`supctl status` against `supervisorctl status` and `pm2 ls`, 100 bots / programs / apps, and `supctl ls` over 5 masters,
median wall time in the same run.

Run: .venv/bin/python bench/cli.py [--bots 100] [--runs 30] [--masters 5] [--no-pm2] [--before OLD_CHECKOUT]
The tools are installed the way users install them (supctl as a regular, non-editable package,
supervisor from PyPI, pm2 from npm) under bench/.venvs (supctl's rebuilt each run), so none pays
for a development install. pm2 keeps its PM2_HOME in the run's temp dir.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from baseline import Pm2, Supervisord, median_ms, supctl_venv, venv_with, wait_until


def supervisord_setup(tmp: Path, n: int) -> tuple[list[str], Supervisord]:
    programs = "".join(f"[program:bot{i}]\ncommand=sleep 3600\nstartsecs=0\n\n" for i in range(n))
    sv = Supervisord(tmp, programs)
    sv.start()
    ctl = sv.ctl("status")
    wait_until(lambda: subprocess.run(ctl, capture_output=True, text=True).stdout.count("RUNNING") == n, 120, "supervisord programs")
    return ctl, sv


def supctl_setup(supctl: Path, tmp: Path, n: int) -> dict[str, str]:
    """A master of `n` bots in `tmp`; the registry of masters (what `supctl ls` reads) is the run's own."""
    tmp.mkdir(exist_ok=True)
    procfile = tmp / "procfile.toml"
    bots = "".join(f'[bots.bot{i}]\ncmd = ["sleep", "3600"]\nstart_grace = "100ms"\n' for i in range(n))
    procfile.write_text(f'[supervisor]\nstate_dir = "state"\n{bots}')
    env = {**os.environ, "SUPCTL_PROCFILE": str(procfile), "XDG_RUNTIME_DIR": str(tmp.parent / "run")}
    subprocess.run([str(supctl), "start"], env=env, check=True, stdout=subprocess.DEVNULL)
    wait_until(lambda: subprocess.run([str(supctl), "status"], capture_output=True, text=True, env=env).stdout.count("RUNNING") == n,
               60, "supctl bots")
    return env


def pm2_setup(tmp: Path, n: int) -> Pm2:
    d = tmp / "pm2"
    d.mkdir()
    pm2 = Pm2(d, [{"name": f"bot{i}", "script": "sleep", "args": ["3600"], "interpreter": "none"} for i in range(n)])
    pm2.start()
    pm2.proc.wait(120)  # type: ignore[union-attr]
    wait_until(lambda: subprocess.run(pm2.ctl("jlist"), capture_output=True, text=True, env=pm2.env).stdout.count('"status":"online"') == n,
               120, "pm2 apps")
    return pm2


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bots", type=int, default=100)
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--masters", type=int, default=5, help="masters `supctl ls` lists (the first has --bots, the others 20)")
    ap.add_argument("--no-pm2", dest="pm2", action="store_false")
    ap.add_argument("--before", type=Path, help="also time `supctl status` of the supctl in this checkout (an older commit) in the same rounds")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        (tmp / "run").mkdir(mode=0o700)
        ctl, sv = supervisord_setup(tmp, args.bots)
        supctl = supctl_venv() / "bin/supctl"
        envs = [supctl_setup(supctl, tmp / f"m{k}", args.bots if k == 0 else 20) for k in range(args.masters)]
        env = envs[0]
        pm2 = pm2_setup(tmp, args.bots) if args.pm2 else None
        if args.before is not None:
            old = venv_with("supctl-before", str(args.before.resolve()), fresh=True) / "bin/supctl"
            envs.append(supctl_setup(old, tmp / "before", args.bots))
        cmds: dict[str, tuple[list[str], dict[str, str] | None]] = {"supctl": ([str(supctl), "status"], env), "supervisorctl": (ctl, None),
                                                                     "ls": ([str(supctl), "ls"], env)}
        if pm2 is not None:
            cmds["pm2"] = (pm2.ctl("ls"), pm2.env)
        if args.before is not None:
            cmds["before"] = ([str(old), "status"], envs[-1])
        cmds["python"] = ([sys.executable, "-c", "pass"], None)
        try:
            rounds: dict[str, list[float]] = {k: [] for k in cmds}
            for _ in range(3):  # the tools take turns, so drift in the machine hits all alike
                for k, (argv, e) in cmds.items():
                    rounds[k].append(median_ms(argv, args.runs // 3, e))
            ms = {k: statistics.median(v) for k, v in rounds.items()}
        finally:
            for e in envs:
                subprocess.run([str(old if e is envs[-1] and args.before else supctl), "shutdown"], env=e,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            sv.stop()
            if pm2 is not None:
                pm2.stop()
    print(f"{'command':34} {'median ms':>10}")
    print(f"{'supctl status (' + str(args.bots) + ' bots)':34} {ms['supctl']:10.1f}")
    print(f"{'supervisorctl status (' + str(args.bots) + ')':34} {ms['supervisorctl']:10.1f}")
    if "pm2" in ms:
        print(f"{'pm2 ls (' + str(args.bots) + ' apps)':34} {ms['pm2']:10.1f}")
    print(f"{'supctl ls (' + str(args.masters) + ' masters)':34} {ms['ls']:10.1f}")
    print(f"{'python3 -c pass (floor)':34} {ms['python']:10.1f}")
    print(f"ratio supctl / supervisorctl: {ms['supctl'] / ms['supervisorctl']:.2f} (target <= 0.40)"
          + (f"; supctl / pm2: {ms['supctl'] / ms['pm2']:.2f}" if "pm2" in ms else ""))
    print(f"ratio supctl ls / supctl status: {ms['ls'] / ms['supctl']:.2f} (target < 2)")
    if "before" in ms:
        print(f"supctl status of {args.before}: {ms['before']:.1f} ms, ratio to supervisorctl "
              f"{ms['before'] / ms['supervisorctl']:.2f}; now / before: {ms['supctl'] / ms['before']:.2f}")


if __name__ == "__main__":
    main()
