"""A reload is a transaction (issue 12 item 5): every refusal comes before anything is stopped, and a failure
while applying puts the old configuration back; the user never reads "internal error" for what they wrote."""

from __future__ import annotations

import json
import re
import textwrap

import psutil
import pytest
from harness import RECORDER, wait_until

pytestmark = pytest.mark.timeout(90)

PLUGINS = '''
import errno
from supervisor.plugin import CheckContext, HealthCheck, NoOptions, Result


class Unreachable(HealthCheck):
    """Its constructor fails with something other than ValueError/TypeError, already when the procfile is validated."""
    name = "unreachable"

    def __init__(self, options: NoOptions) -> None:
        raise RuntimeError("cannot reach the database")

    async def check(self, ctx: CheckContext) -> Result:
        return Result.ok()


class BuildsOnce(HealthCheck):
    """Built once when the procfile is validated; every later build (one per instance, when the bot is added) fails:
    the kind of failure only applying a reload can meet."""
    name = "builds_once"
    built = 0

    def __init__(self, options: NoOptions) -> None:
        super().__init__(options)
        type(self).built += 1
        if type(self).built > 1:
            raise OSError(errno.EMFILE, "Too many open files (injected)")

    async def check(self, ctx: CheckContext) -> Result:
        return Result.ok()
'''

SLEEP = 'cmd = ["sleep", "60"]\n'


def procfile(*tables: str, sup: str = "") -> str:
    return textwrap.dedent(f"""
        [supervisor]
        state_dir = "state"
        plugin_paths = ["checks.py", "{RECORDER}"]
        """) + sup + textwrap.dedent("""
        [defaults]
        start_grace = "100ms"
        """) + "\n".join(tables)


def rows(m) -> dict[str, dict]:
    out = m.ctl("status", "--json")
    assert out.returncode == 0, out.stderr
    return {f"{r['bot']}:{r['instance']}": r for r in json.loads(out.stdout)["instances"]}


def start(master, tmp_path, *tables: str):
    (tmp_path / "checks.py").write_text(PLUGINS)
    m = master(procfile(*tables))
    return m


def test_reload_adding_reserved_bot_supctl_while_changing_a_leaves_a_running_untouched(master, tmp_path) -> None:
    m = start(master, tmp_path, "[bots.a]\n" + SLEEP)
    m.wait_transition("a:0", "RUNNING")
    pid = rows(m)["a:0"]["pid"]
    m.procfile.write_text(procfile("[bots.a]\n" + SLEEP + 'env = { X = "1" }\n', "[bots.supctl]\n" + SLEEP))
    out = m.ctl("reload")
    assert out.returncode != 0 and "internal error" not in out.stdout + out.stderr, out.stdout + out.stderr
    assert "reload rejected, nothing changed" in out.stderr and "bots.supctl" in out.stderr, out.stderr
    assert rows(m)["a:0"]["pid"] == pid and psutil.Process(pid).is_running()
    assert [t.new for t in m.transitions("a")] == ["STARTING", "RUNNING"]
    m.procfile.write_text(procfile("[bots.a]\n" + SLEEP + 'env = { X = "1" }\n'))
    out = m.ctl("reload")
    assert out.returncode == 0 and re.search(r"restarted: +a", out.stdout), out.stdout + out.stderr
    m.wait_transition("a:0", "RUNNING", count=2)
    assert psutil.Process(rows(m)["a:0"]["pid"]).environ()["X"] == "1"
    assert m.stop() == 0


def test_reload_with_a_plugin_that_cannot_be_built_is_refused_before_anything_stops(master, tmp_path) -> None:
    m = start(master, tmp_path, "[bots.a]\n" + SLEEP)
    m.wait_transition("a:0", "RUNNING")
    pid = rows(m)["a:0"]["pid"]
    check = '[[bots.a.health]]\ncheck = "unreachable"\nevery = "1h"\n'
    m.procfile.write_text(procfile("[bots.a]\n" + SLEEP + 'env = { X = "1" }\n' + check))
    out = m.ctl("reload")
    assert out.returncode != 0 and "internal error" not in out.stdout + out.stderr, out.stdout + out.stderr
    assert "reload rejected, nothing changed" in out.stderr, out.stderr
    assert "bots.a.health[0]" in out.stderr and "cannot reach the database" in out.stderr, out.stderr
    assert rows(m)["a:0"]["pid"] == pid
    assert [t.new for t in m.transitions("a")] == ["STARTING", "RUNNING"]
    assert m.stop() == 0


def test_reload_failing_while_applied_rolls_back_to_the_old_configuration(master, tmp_path) -> None:
    m = start(master, tmp_path, "[bots.a]\n" + SLEEP, "[bots.gone]\n" + SLEEP, "[bots.kept]\n" + SLEEP)
    for name in ("a:0", "gone:0", "kept:0"):
        m.wait_transition(name, "RUNNING")
    kept = rows(m)["kept:0"]["pid"]
    failing = '[bots.b]\ncmd = ["sleep", "61"]\n[[bots.b.health]]\ncheck = "builds_once"\nevery = "1h"\n'
    heard = tmp_path / "heard.jsonl"
    m.procfile.write_text(procfile("[bots.a]\n" + SLEEP + 'env = { X = "1" }\n', "[bots.kept]\n" + SLEEP,
                                   '[bots.c]\ncmd = ["sleep", "62"]\n', failing,
                                   sup=f'hooks = [{{ hook = "recorder", path = "{heard}" }}]\n'))
    out = m.ctl("reload")
    assert out.returncode != 0 and "internal error" not in out.stdout + out.stderr, out.stdout + out.stderr
    assert "reload failed while starting bot b" in out.stderr and "Too many open files (injected)" in out.stderr, out.stderr
    assert "rolled back" in out.stderr, out.stderr

    def old_fleet_running() -> bool:
        now = rows(m)
        return sorted(now) == ["a:0", "gone:0", "kept:0"] and all(r["state"] == "RUNNING" for r in now.values())

    wait_until(old_fleet_running, 30, "the old bots a, gone and kept RUNNING again, and only them")
    now = rows(m)
    assert now["kept:0"]["pid"] == kept
    assert "X" not in psutil.Process(now["a:0"]["pid"]).environ()
    cmdlines = [psutil.Process(p).cmdline() for p in m.bot_pids()]
    assert sorted(cmdlines) == [["sleep", "60"]] * 3, cmdlines
    events = [json.loads(line) for line in heard.read_text().splitlines()] if heard.exists() else []
    assert {e["bot"] for e in events} <= {"c"}, events  # the new hook heard c only: the old hooks were back before a and gone
    m.procfile.write_text(procfile("[bots.a]\n" + SLEEP + 'env = { X = "1" }\n', "[bots.kept]\n" + SLEEP,
                                   '[bots.c]\ncmd = ["sleep", "62"]\n'))
    out = m.ctl("reload", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout) == {"added": ["c"], "removed": ["gone"], "restarted": ["a"], "kept": ["kept"],
                                      "needs_restart": []}
    m.wait_transition("c:0", "RUNNING")
    m.wait_transition("a:0", "RUNNING", count=3)
    assert rows(m)["kept:0"]["pid"] == kept
    assert m.stop() == 0
