"""One master per procfile, found through the per-user registry (issue 12 item 2, issue 13 items 1-4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
from daemon_helpers import SLEEPER, SUPCTL, Daemon, wait_for

from supervisor.config import registry


def one_bot(d: Daemon, state_dir: str = "state") -> None:
    d.procfile.write_text(f'[supervisor]\nstate_dir = "{state_dir}"\n[bots.a]\ncmd = ["{sys.executable}", "-c", '
                          f'{json.dumps(SLEEPER)}]\nstart_grace = "100ms"\n')


def masters_of(procfile: Path) -> list[psutil.Process]:
    """Every supctl master process running this procfile (the daemon keeps the CLI's argv)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = p.info["cmdline"] or []
        if "supervisor.cli.main" in cmd and "start" in cmd and p.status() != psutil.STATUS_ZOMBIE:
            try:
                if p.environ().get("SUPCTL_PROCFILE") == str(procfile) and p.ppid() == 1:
                    found.append(p)
            except psutil.Error:
                pass
    return found


def test_parallel_start_gives_one_master_and_shutdown_leaves_nothing(daemon: Daemon) -> None:
    one_bot(daemon)
    env = {**os.environ, "SUPCTL_PROCFILE": str(daemon.procfile)}
    starts = [subprocess.Popen([*SUPCTL, "start"], cwd=daemon.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True) for _ in range(4)]
    outs = [p.communicate(timeout=60) for p in starts]
    assert all(p.returncode == 0 for p in starts), outs
    assert sum("started master pid" in out for out, _ in outs) == 1, outs
    daemon.wait_states({"a:0": "RUNNING"})
    masters = masters_of(daemon.procfile)
    assert len(masters) == 1, masters
    bots = [c for c in masters[0].children(recursive=True) if "time.sleep" in " ".join(c.cmdline())]
    assert len(bots) == 1
    assert (daemon.state / "control.sock").exists()
    daemon.run("shutdown", check=True)
    assert not masters[0].is_running() or masters[0].status() == psutil.STATUS_ZOMBIE
    assert not any(b.is_running() and b.status() != psutil.STATUS_ZOMBIE for b in bots)


def test_a_toml_syntax_error_does_not_lose_the_master(daemon: Daemon) -> None:
    one_bot(daemon)
    daemon.run("start", check=True)
    daemon.wait_states({"a:0": "RUNNING"})
    with daemon.procfile.open("a") as f:
        f.write("bots.a.instances = \n")
    assert daemon.states() == {"a:0": "RUNNING"}
    daemon.run("stop", "a", check=True)
    assert daemon.run("shutdown", check=True).stdout.startswith("master pid")


def test_an_edited_state_dir_keeps_the_master_and_refuses_a_second(daemon: Daemon) -> None:
    one_bot(daemon)
    daemon.run("start", check=True)
    daemon.wait_states({"a:0": "RUNNING"})
    pid = daemon.master_pid()
    one_bot(daemon, state_dir="elsewhere")
    assert daemon.states() == {"a:0": "RUNNING"}
    second = daemon.run("start")
    assert second.returncode == 1
    assert f"master pid {pid} already runs" in second.stderr and "state_dir" in second.stderr
    assert not (daemon.root / "elsewhere").exists()
    reload = daemon.run("reload")
    assert reload.returncode == 1 and "state_dir cannot change on reload" in reload.stderr
    assert len(masters_of(daemon.procfile)) == 1


def test_a_state_dir_serves_one_master_and_its_socket_survives(daemon: Daemon, tmp_path: Path) -> None:
    one_bot(daemon)
    daemon.run("start", check=True)
    daemon.wait_states({"a:0": "RUNNING"})
    other = tmp_path / "other.toml"
    other.write_text(daemon.procfile.read_text())
    out = subprocess.run([*SUPCTL, "-c", str(other), "start"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and f"state_dir {daemon.state} is in use by another master" in out.stderr
    assert (daemon.state / "control.sock").exists()
    assert daemon.states() == {"a:0": "RUNNING"}


def test_ls_lists_every_master_of_the_user_from_anywhere(tmp_path: Path) -> None:
    daemons = []
    try:
        for i in range(3):
            (tmp_path / f"p{i}").mkdir()
            d = Daemon(tmp_path / f"p{i}")
            one_bot(d)
            d.run("start", check=True)
            daemons.append(d)
        for d in daemons:
            d.wait_states({"a:0": "RUNNING"})
        rows = json.loads(subprocess.run([*SUPCTL, "ls", "--json"], cwd="/", capture_output=True, text=True,
                                         check=True).stdout)
        assert sorted(r["procfile"] for r in rows) == sorted(str(d.procfile) for d in daemons)
        assert all(r["state"] == "running" and r["running"] == r["instances"] == 1 and r["fatal"] == 0 for r in rows)
        assert {r["version"] for r in rows} == {__import__("supervisor").__version__}
        table = subprocess.run([*SUPCTL, "list"], cwd="/", capture_output=True, text=True, check=True).stdout
        assert table.splitlines()[0].split()[:3] == ["PROCFILE", "PID", "UPTIME"] and len(table.splitlines()) == 4
        daemons[1].run("shutdown", check=True)
        rows = json.loads(subprocess.run([*SUPCTL, "ls", "--json"], capture_output=True, text=True, check=True).stdout)
        assert str(daemons[1].procfile) not in {r["procfile"] for r in rows} and len(rows) == 2
    finally:
        leftovers = [line for d in daemons for line in d.cleanup()]
    assert not leftovers, "processes left running after the test:\n" + "\n".join(leftovers)


def test_a_killed_master_is_listed_as_not_answering_and_a_new_start_takes_over(daemon: Daemon) -> None:
    one_bot(daemon)
    daemon.run("start", check=True)
    daemon.wait_states({"a:0": "RUNNING"})
    master = psutil.Process(daemon.master_pid())
    master.kill()
    master.wait(10)
    rows = json.loads(daemon.run("ls", "--json", check=True).stdout)
    assert [(r["pid"], r["state"]) for r in rows] == [(master.pid, "not answering")]
    out = daemon.run("start", check=True)
    assert "started master pid" in out.stdout
    daemon.wait_states({"a:0": "RUNNING"})


def test_the_registry_is_owner_only_and_names_the_procfile(daemon: Daemon, runtime_dir: Path) -> None:
    one_bot(daemon)
    daemon.run("start", check=True)
    entry = registry.read(str(daemon.procfile))
    assert entry is not None and entry.pid == daemon.master_pid() and entry.state_dir == str(daemon.state)
    assert (runtime_dir / "supctl").stat().st_mode & 0o777 == 0o700
    assert all(p.stat().st_mode & 0o077 == 0 for p in (runtime_dir / "supctl" / "masters").iterdir())
    status = json.loads((daemon.state / "status.json").read_text())
    assert status["version"] == entry.version


def test_verbs_walk_up_to_the_nearest_procfile(daemon: Daemon) -> None:
    one_bot(daemon)
    daemon.run("start", check=True)
    deep = daemon.root / "src" / "pkg"
    deep.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k != "SUPCTL_PROCFILE"}
    out = wait_for(lambda: (r := subprocess.run([*SUPCTL, "status", "--json"], cwd=deep, env=env, capture_output=True,
                                                 text=True)).returncode == 0 and r)
    assert [row["bot"] for row in json.loads(out.stdout)["instances"]] == ["a"]
