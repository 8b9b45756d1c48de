"""Every --json verb against a real master, checked against the committed docs/json-schema.json (issue 13 items 6,
8, 10, 11): no extra or missing fields, no wire tags, errors as JSON on stderr; plus what people see (SIGKILL
feedback, describe, logs supervisor/--err, flush while a bot writes)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import jsonschema
import pytest
from daemon_helpers import SLEEPER, Daemon, wait_for
from harness import BOTS

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "json-schema.json").read_text())
CHATTY = "import sys, time\nwhile True:\n    print('out', flush=True); print('oops', file=sys.stderr, flush=True); time.sleep(0.02)"


def strict(node: object) -> object:
    """The committed schema with no unknown fields allowed anywhere."""
    if isinstance(node, dict):
        node = {k: strict(v) for k, v in node.items()}
        if node.get("type") == "object" and "properties" in node:
            node["additionalProperties"] = False
        return node
    return [strict(v) for v in node] if isinstance(node, list) else node


STRICT = strict(SCHEMA)


def check(verb: str, text: str) -> object:
    doc = json.loads(text)
    jsonschema.validate(doc, {"$defs": STRICT["$defs"], **STRICT["verbs"][verb]})  # type: ignore[index]
    assert '"op"' not in text
    return doc


@pytest.fixture
def daemon(tmp_path: Path):
    d = Daemon(tmp_path)
    d.write(f'''
        [defaults]
        start_grace = "100ms"
        [bots.chatty]
        cmd = ["{sys.executable}", "-c", {json.dumps(CHATTY)}]
        instances = 2
        env = {{ API_TOKEN = "hunter2", MODE = "paper" }}
        log = {{ max_size = "4KB", backups = 2 }}
        [bots.stubborn]
        cmd = ["{sys.executable}", "{BOTS / 'stubborn.py'}"]
        stop_timeout = "1s"
        [bots.crash]
        cmd = ["sh", "-c", "exit 3"]
        backoff = {{ initial = "30s" }}
        [bots.quiet]
        cmd = ["{sys.executable}", "-c", {json.dumps(SLEEPER)}]
        [[bots.quiet.health]]
        check = "exec"
        cmd = ["true"]
        every = "200ms"
        [tasks.hello]
        cmd = ["echo", "hi"]
        every = "1h"
    ''')
    d.run("start", check=True)
    d.wait_states({"chatty:1": "RUNNING", "stubborn:0": "RUNNING", "crash:0": "BACKOFF", "quiet:0": "RUNNING"})
    yield d
    leftovers = d.cleanup()
    assert not leftovers, "processes left running after the test:\n" + "\n".join(leftovers)


def test_every_json_verb_matches_the_committed_schema(daemon: Daemon) -> None:
    status = check("status", daemon.run("status", "--json", check=True).stdout)
    assert status["version"] == __import__("supervisor").__version__ and status["master"]["pid"] == daemon.master_pid()
    rows = {f"{r['bot']}:{r['instance']}": r for r in status["instances"]}
    crash = rows["crash:0"]
    assert crash["last_exit"]["code"] == 3 and crash["last_exit"]["signal"] is None and crash["next_try_at"] > 0
    quiet = wait_for(lambda: (r := daemon.status("quiet")[0])["health"] and r["health"]["state"] == "healthy" and r)
    assert quiet["health"]["since"] > 0
    check("status --tasks", daemon.run("status", "--tasks", "--json", check=True).stdout)
    check("ls", daemon.run("ls", "--json", check=True).stdout)
    check("start, stop, restart, signal", daemon.run("restart", "chatty:0", "--json", check=True).stdout)
    check("start, stop, restart, signal", daemon.run("signal", "HUP", "quiet", "--json", check=True).stdout)
    check("reload", daemon.run("reload", "--json", check=True).stdout)
    check("run", daemon.run("run", "hello", "--json", check=True).stdout)
    check("health", daemon.run("health", "quiet", "--json", check=True).stdout)
    check("describe", daemon.run("describe", "chatty", "--json", check=True).stdout)
    lines = daemon.run("logs", "chatty", "--json", "-n", "5", check=True).stdout.splitlines()
    assert lines and all(check("logs (one object per line)", line) for line in lines)
    assert {json.loads(line)["stream"] for line in lines} == {"stdout", "stderr"}
    assert {json.loads(line)["instance"] for line in lines} == {0, 1}
    bad = daemon.run("status", "nope", "--json")
    assert bad.returncode == 1 and bad.stdout == ""
    err = check("errors (on stderr)", bad.stderr)
    assert err == {"error": "no bot named 'nope'; bots: chatty, stubborn, crash, quiet", "exit_code": 1}


def test_stop_says_what_it_waits_for_and_when_sigkill_was_needed(daemon: Daemon) -> None:
    out = daemon.run("stop", "stubborn", check=True)
    assert "stubborn:0: sending SIGTERM, SIGKILL in 1s if it is still running" in out.stderr
    assert out.stdout.splitlines() == ["stubborn:0 STOPPED", "stubborn:0: did not stop within stop_timeout; SIGKILL was needed"]
    row = daemon.status("stubborn")[0]
    assert row["last_exit"]["signal"] == "SIGKILL" and row["last_exit"]["reason"] == "SIGKILL after stop_timeout"
    table = daemon.run("status", "stubborn", check=True).stdout
    assert "SIGKILL after stop_timeout" in table
    assert "BACKOFF (next try in" in daemon.run("status", "crash", check=True).stdout
    quick = daemon.run("stop", "quiet", check=True)
    assert "SIGKILL" not in quick.stdout and "quiet:0: sending SIGTERM, SIGKILL in 10s" in quick.stderr


def test_shutdown_tells_what_it_stops_and_what_needed_sigkill(daemon: Daemon) -> None:
    out = daemon.run("shutdown", check=True)
    assert "stopping every bot of master pid" in out.stderr and "stubborn:0: sending SIGTERM, SIGKILL in 1s" in out.stderr
    assert out.stdout.splitlines()[0].startswith("master pid")
    assert "stubborn:0: did not stop within stop_timeout; SIGKILL was needed" in out.stdout


def test_describe_shows_the_resolved_bot_with_secrets_masked(daemon: Daemon) -> None:
    d = json.loads(daemon.run("describe", "chatty", "--json", check=True).stdout)
    assert d["env"]["API_TOKEN"] == "****" and d["env"]["MODE"] == "paper" and d["env"]["SUPCTL_BUS_TOKEN"] == "****"
    assert d["config"]["start_grace"] == "100ms" and d["config"]["restart_limit"] == {"count": 10, "window": "5m"}
    assert d["logs"] == [str(daemon.state / "logs" / "chatty-0.log"), str(daemon.state / "logs" / "chatty-1.log")]
    assert [b["left"] for b in d["budgets"]] == [10, 10] and [b["next_backoff_s"] for b in d["budgets"]] == [0.1, 0.1]
    crash = json.loads(daemon.run("describe", "crash", "--json", check=True).stdout)["budgets"][0]
    assert crash["next_backoff_s"] == 30.0, crash  # backoff.initial, and capped there by the default backoff.max
    text = daemon.run("describe", "chatty", check=True).stdout
    assert "hunter2" not in text and "API_TOKEN=****" in text and "budget 0/10 used in 5m (10 left)  next backoff 0.1s" in text
    assert daemon.run("describe", "quiet", check=True).stdout.count("check    exec") >= 1
    missing = daemon.run("describe", "nope")
    assert missing.returncode == 1 and "no bot named 'nope'; bots: chatty, stubborn, crash, quiet" in missing.stderr


def test_logs_of_the_master_stderr_only_and_unknown_names(daemon: Daemon) -> None:
    master = daemon.run("logs", "supervisor", "-n", "50", check=True).stdout
    assert re.search(r"master pid \d+ starting procfile", master)
    err = daemon.run("logs", "chatty:1", "--err", "-n", "5", check=True).stdout.splitlines()
    assert len(err) == 5 and all(line == "[stderr] oops" for line in err)
    unknown = daemon.run("logs", "nope")
    assert unknown.returncode == 1 and "no bot named 'nope'; bots: chatty, stubborn, crash, quiet" in unknown.stderr


def test_flush_empties_logs_while_the_bot_writes_and_keeps_whole_lines(daemon: Daemon) -> None:
    log = daemon.state / "logs" / "chatty-0.log"
    wait_for(lambda: (daemon.state / "logs" / "chatty-0.log.1").exists(), 30, "a rotated chatty log")
    out = daemon.run("flush", "chatty", check=True).stdout
    assert out.startswith("emptied the logs of chatty:0, chatty:1")
    assert not (daemon.state / "logs" / "chatty-0.log.1").exists()
    wait_for(lambda: log.stat().st_size > 0, what="new output after flush")
    text = wait_for(lambda: (t := log.read_text()).count("\n") >= 20 and t)
    assert all(line in ("out", "[stderr] oops") for line in text.splitlines()), text[:200]
    assert daemon.status("chatty:0")[0]["state"] == "RUNNING"
