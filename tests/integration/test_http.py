"""The master's HTTP server against a real master: health, status, writes with the token, SSE, logs, metrics."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
from pathlib import Path

import httpx
from harness import bot, toml_argv, wait_until
from http_helpers import HTTP, auth, base_url, sse_events

FLEET = f'''
[supervisor]
state_dir = "state"
{HTTP}
[bots.steady]
cmd = {toml_argv(bot("sleeper"))}
start_grace = "200ms"

[bots.crashy]
cmd = {toml_argv(bot("crasher"))}
start_grace = "5s"
backoff = {{ initial = "50ms", max = "200ms" }}
restart_limit = {{ count = 1000 }}
'''


def status(url: str) -> dict[str, dict]:
    return {f"{r['bot']}:{r['instance']}": r for r in httpx.get(f"{url}/status").json()["instances"]}


def test_health_names_what_is_wrong_and_status_is_the_cli_json(master) -> None:
    m = master(FLEET)
    url = base_url(m)
    m.wait_transition("steady:0", "RUNNING")
    r = httpx.get(f"{url}/health")
    assert r.status_code == 503
    body = r.json()
    assert {p["bot"] for p in body["problems"]} == {"crashy"}
    assert body["kill_switch"]["active"] is False
    one = httpx.get(f"{url}/health/steady")
    assert one.status_code == 200 and one.json()["ok"] is True
    assert httpx.get(f"{url}/health/crashy").status_code == 503
    missing = httpx.get(f"{url}/health/nope")
    assert missing.status_code == 404 and "no bot named 'nope'" in missing.json()["error"]
    served = httpx.get(f"{url}/status?target=steady").json()["instances"]
    printed = json.loads(m.ctl("status", "steady", "--json").stdout)["instances"]
    assert [sorted(r) for r in served] == [sorted(r) for r in printed]
    assert [(r["bot"], r["pid"], r["state"]) for r in served] == [(r["bot"], r["pid"], r["state"]) for r in printed]
    assert httpx.get(f"{url}/status?target=nope").status_code == 404


def test_writes_need_the_owner_only_token(master) -> None:
    m = master(FLEET)
    url = base_url(m)
    m.wait_transition("steady:0", "RUNNING")
    token_file = m.state_dir / "http.token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    pid = status(url)["steady:0"]["pid"]
    for headers in ({}, {"Authorization": "Bearer wrong-token-of-some-length"}, {"Authorization": "Basic abc"}):
        r = httpx.post(f"{url}/bots/steady/restart", headers=headers)
        assert r.status_code == 401 and "bearer token" in r.json()["error"]
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert httpx.post(f"{url}/kill-switch", json={"activate": True, "reason": "x"}).status_code == 401
    assert status(url)["steady:0"]["pid"] == pid
    assert httpx.get(f"{url}/kill-switch").json()["active"] is False
    r = httpx.post(f"{url}/bots/steady/restart", headers=auth(m), timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["ok"] is True and "op" not in r.json()
    assert status(url)["steady:0"]["pid"] not in (None, pid)
    assert httpx.post(f"{url}/bots/nope/restart", headers=auth(m)).status_code == 404
    assert httpx.post(f"{url}/bots/steady/explode", headers=auth(m)).status_code == 404
    stopped = httpx.post(f"{url}/bots/steady/stop?instance=0", headers=auth(m), timeout=30)
    assert stopped.status_code == 200 and status(url)["steady:0"]["state"] == "STOPPED"
    reload = httpx.post(f"{url}/reload", headers=auth(m), timeout=30)
    assert reload.status_code == 200 and reload.json()["kept"] == ["steady", "crashy"]


def test_events_stream_a_crash(master) -> None:
    m = master(FLEET.replace('[bots.crashy]', '[bots.crashy]\nautostart = false'))
    url = base_url(m)
    m.wait_transition("steady:0", "RUNNING")
    pid = status(url)["steady:0"]["pid"]
    with httpx.stream("GET", f"{url}/events", timeout=20) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = r.iter_lines()
        assert next(lines) == "retry: 1000" and next(lines) == ": connected"
        usage = sse_events(lines, lambda k, d: k == "usage")
        assert [row[:2] for row in usage["instances"]] == [["steady", 0]] and usage["instances"][0][3] > 1 << 20
        os.kill(pid, signal.SIGKILL)
        event = sse_events(lines, lambda k, d: k == "process" and d["kind"] == "exited" and d["bot"] == "steady")
    assert event["pid"] == pid and "SIGKILL" in event["reason"]


def test_logs_last_lines_and_follow(master) -> None:
    m = master(FLEET)
    url = base_url(m)
    m.wait_transition("steady:0", "RUNNING")
    text = httpx.get(f"{url}/logs/steady?lines=5").text
    assert re.search(r"bot=steady instance=0 pid=\d+", text)
    assert "crashing with 1" in httpx.get(f"{url}/logs/crashy?instance=0&lines=1").text
    assert httpx.get(f"{url}/logs/steady?instance=3").status_code == 400
    assert httpx.get(f"{url}/logs/steady?lines=-1").status_code == 400
    assert httpx.get(f"{url}/logs/nope").status_code == 404
    with httpx.stream("GET", f"{url}/logs/steady?lines=0&follow=1", timeout=20) as r:
        lines = r.iter_lines()
        new = httpx.post(f"{url}/bots/steady/restart", headers=auth(m), timeout=30).json()
        assert new["ok"]
        pid = status(url)["steady:0"]["pid"]
        assert next(line for line in lines if "pid=" in line).endswith(f"pid={pid} unbuffered=1")


def test_metrics_pass_promtool(master) -> None:
    m = master(FLEET)
    url = base_url(m)
    m.wait_transition("steady:0", "RUNNING")
    m.wait_transition("crashy:0", "BACKOFF", count=2)
    r = httpx.get(f"{url}/metrics")
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.text
    for name in ("supctl_instance_up", "supctl_instance_state", "supctl_instance_restarts_total",
                 "supctl_instance_cpu_seconds_total", "supctl_instance_resident_memory_bytes", "supctl_bus_messages_total",
                 "supctl_bus_dropped_total", "supctl_kill_switch_active", "supctl_kill_switch_info"):
        assert re.search(rf"^{name}[{{ ]", text, re.M), name
    assert re.search(r'^supctl_instance_up\{bot="steady",instance="0"\} 1\.0$', text, re.M)
    assert re.search(r'^supctl_instance_state\{bot="steady",instance="0",state="RUNNING"\} 1\.0$', text, re.M)
    restarts = re.search(r'^supctl_instance_restarts_total\{bot="crashy",instance="0",reason="exit"\} (\d+)', text, re.M)
    assert restarts and float(restarts.group(1)) >= 2
    docs = (Path(__file__).parents[2] / "docs" / "http.md").read_text()
    for family in re.findall(r"^# TYPE (supctl_\w+) \w+$", text, re.M):
        assert f"`{family}`" in docs, f"{family} is not in docs/http.md"
    check = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert check.returncode == 0 and not (check.stdout + check.stderr).strip(), check.stdout + check.stderr


def restart_counts(url: str, bot: str) -> dict[str, float]:
    text = httpx.get(f"{url}/metrics").text
    return {m[1]: float(m[2]) for m in re.finditer(
        rf'^supctl_instance_restarts_total\{{bot="{bot}",instance="0",reason="(\w+)"\}} (\S+)$', text, re.MULTILINE)}


def test_restarts_are_counted_by_reason(master, tmp_path: Path) -> None:
    """A crash, a health recovery, a restart by hand and one by watch land in four series; promtool still passes."""
    flag = tmp_path / "fail-once"
    (tmp_path / "src").mkdir()
    m = master(f'''
        [supervisor]
        state_dir = "state"
        {HTTP}
        [bots.app]
        cmd = {toml_argv(bot("sleeper"))}
        start_grace = "100ms"
        backoff = {{ initial = "50ms" }}
        watch = ["src/"]
        [[bots.app.health]]
        check = "exec"
        cmd = ["sh", "-c", "if [ -e {flag} ]; then rm {flag}; exit 1; fi"]
        every = "100ms"
        failures = 1
        recover = "restart"
    ''')
    url = base_url(m)
    m.wait_transition("app:0", "RUNNING")
    assert restart_counts(url, "app") == {"exit": 0}
    os.kill(status(url)["app:0"]["pid"], signal.SIGKILL)
    m.wait_transition("app:0", "RUNNING", count=2)
    flag.touch()
    m.wait_transition("app:0", "RUNNING", count=3, timeout=30)
    assert not flag.exists()
    assert httpx.post(f"{url}/bots/app/restart", headers=auth(m), timeout=30).json()["ok"]
    assert restart_counts(url, "app") == {"exit": 1, "health": 1, "manual": 1}
    m.wait_line(r"app: watch armed on src/")
    (tmp_path / "src" / "strategy.py").write_text("x")
    m.wait_transition("app:0", "RUNNING", count=5, timeout=30)
    assert restart_counts(url, "app") == {"exit": 1, "health": 1, "manual": 1, "watch": 1}
    check = subprocess.run(["promtool", "check", "metrics"], input=httpx.get(f"{url}/metrics").text, capture_output=True,
                           text=True, check=False)
    assert check.returncode == 0 and not (check.stdout + check.stderr).strip(), check.stdout + check.stderr


def maps_mention(pid: int, word: str) -> bool:
    with open(f"/proc/{pid}/maps") as f:
        return word in f.read()


def test_http_costs_nothing_when_off(master) -> None:
    """A master with [http] serves without aiohttp (12-14 MiB of RSS at import); one without loads no server at all."""
    on = master(FLEET)
    base_url(on)
    assert not maps_mention(on.pid, "aiohttp")
    on.stop()
    libraries = "('aiohttp', 'h11', 'prometheus_client')"
    code = ("import sys, supervisor.master.root, supervisor.cli.main; print(sorted(m for m in sys.modules "
            f"if m.split('.')[0] in {libraries} or m.startswith('supervisor.http.')))")
    out = subprocess.run([os.sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    code = f"import sys, supervisor.http.server; print(sorted({{m.split('.')[0] for m in sys.modules}} & set({libraries})))"
    out = subprocess.run([os.sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['h11', 'prometheus_client']"


def test_bad_requests_get_4xx_and_the_master_stays(master) -> None:
    m = master(FLEET)
    url = base_url(m)
    assert httpx.get(f"{url}/nope").status_code == 404
    assert httpx.delete(f"{url}/status").status_code == 405
    r = httpx.post(f"{url}/kill-switch", headers=auth(m), content=b"{not json")
    assert r.status_code == 400 and "activate" in r.json()["error"]
    r = httpx.post(f"{url}/kill-switch", headers=auth(m), json={"activate": True})
    assert r.status_code == 400 and "reason" in r.json()["error"]
    long = httpx.post(f"{url}/kill-switch", headers=auth(m), json={"activate": True, "reason": "x" * 501})
    assert long.status_code == 400 and "at most 500" in long.json()["error"]
    big = httpx.post(f"{url}/kill-switch", headers=auth(m), content=b"x" * 200_000)
    assert big.status_code == 413
    wait_until(lambda: httpx.get(f"{url}/health/steady").status_code == 200, 10, "steady healthy")


def test_metrics_of_checks_tasks_and_bus(master) -> None:
    m = master(f'''
        [supervisor]
        state_dir = "state"
        {HTTP}
        [bots.good]
        cmd = {toml_argv(bot("sleeper"))}
        start_grace = "100ms"
        [[bots.good.health]]
        check = "exec"
        cmd = ["true"]
        every = "100ms"
        [[bots.good.health]]
        check = "exec"
        cmd = ["sh", "-c", "echo broken; exit 3"]
        every = "100ms"
        failures = 1000
        [bots.talker]
        cmd = {toml_argv(bot("bus_node", "pub"))}
        start_grace = "100ms"
        [tasks.tick]
        cmd = ["true"]
        every = "200ms"
        [tasks.bad]
        cmd = ["false"]
        every = "200ms"
    ''')
    url = base_url(m)
    m.wait_line(r"task tick: exited \(code 0\)", count=2)
    m.wait_line(r"task bad: exited \(code 1\)")

    def scrape() -> str | None:
        text = httpx.get(f"{url}/metrics").text
        return text if re.search(r'^supctl_check_healthy\{bot="good",check="exec#2",instance="0"\} 0\.0$', text, re.M) and \
            re.search(r'^supctl_bus_messages_total\{direction="in"\} [1-9]', text, re.M) else None

    text = wait_until(scrape, 15, "both checks' results and some bus traffic")
    assert re.search(r'^supctl_check_healthy\{bot="good",check="exec",instance="0"\} 1\.0$', text, re.M)
    assert re.search(r'^supctl_check_duration_seconds\{bot="good",check="exec",instance="0"\} \d', text, re.M)
    assert re.search(r'^supctl_task_runs_total\{result="success",task="tick"\} ([2-9]|\d\d)', text, re.M)
    assert re.search(r'^supctl_task_runs_total\{result="failure",task="bad"\} [1-9]', text, re.M)
    assert re.search(r'^supctl_task_last_success_timestamp_seconds\{task="tick"\} 1\.\d+e\+09$', text, re.M)
    assert not re.search(r'^supctl_task_last_success_timestamp_seconds\{task="bad"\}', text, re.M)
    health = httpx.get(f"{url}/health/good")
    assert health.status_code == 503 and "unhealthy: exec: exit 3: broken" in health.json()["problems"][0]["reason"]
