"""Bundled checks and recoveries against real servers and real child processes on 127.0.0.1."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from supervisor.health.loader import Registry, load_registry, parse_health
from supervisor.health.runner import HealthRunner
from supervisor.health.testing import FakeTarget, bundled_entry_points
from supervisor.plugin import Result


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_registry([], Path("."), entry_points=bundled_entry_points())


def run(coro, timeout: float = 15):
    async def bounded():
        async with asyncio.timeout(timeout):
            return await coro
    return asyncio.run(bounded())


def runner_for(registry: Registry, target: FakeTarget, **table) -> HealthRunner:
    return HealthRunner(parse_health("procfile.toml", target.bot, [table], registry), target)


async def results(target: FakeTarget, n: int) -> list[Result]:
    while len(target.results) < n:
        await asyncio.sleep(0.01)
    return [r for _, r, _ in target.results]


class Child:
    """A real Python child whose output lines are kept for ctx.last_lines."""

    def __init__(self, code: str) -> None:
        self.code = textwrap.dedent(code)
        self.lines: collections.deque[str] = collections.deque(maxlen=500)
        self.printed = asyncio.Event()

    async def __aenter__(self) -> Child:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-u", "-c", self.code, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        self.reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        async for line in self.proc.stdout:
            self.lines.append(line.decode().rstrip("\n"))
            self.printed.set()

    def last_lines(self, n: int) -> list[str]:
        return list(self.lines)[-n:]

    async def __aexit__(self, *exc: object) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
        await self.proc.wait()
        await self.reader  # EOF once the child (and its pipe) is gone


class HttpServer:
    """An asyncio HTTP/1.0 server answering from a script of (status, body), recording request bodies."""

    def __init__(self, answers: list[tuple[int, str]]) -> None:
        self.answers = answers
        self.requests: list[bytes] = []
        self.got = asyncio.Event()
        self.answering = asyncio.Event()
        """Cleared, the server holds every answer until a test sets it."""
        self.answering.set()

    async def __aenter__(self) -> HttpServer:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/health"
        return self

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")), 0)
        self.requests.append(await reader.readexactly(length))
        self.got.set()
        await self.answering.wait()
        status, body = self.answers[min(len(self.requests), len(self.answers)) - 1]
        writer.write(f"HTTP/1.0 {status} X\r\nContent-Length: {len(body)}\r\n\r\n{body}".encode())
        await writer.drain()
        writer.close()

    async def __aexit__(self, *exc: object) -> None:
        self.server.close()
        await self.server.wait_closed()


def test_http_check_200_then_500_then_body_mismatch(registry):
    async def go():
        async with HttpServer([(200, "ok ready"), (500, "oops"), (200, "starting")]) as server:
            target = FakeTarget(pid=os.getpid())
            runner = runner_for(registry, target, check="http", url=server.url, body="ready", every="20ms", failures=5)
            runner.start()
            found = await results(target, 3)
            await runner.stop()
            return found

    found = run(go())
    assert found[0] == Result.ok("status 200")
    assert found[1] == Result.fail("status 500, expected 200")
    assert found[2] == Result.fail("body does not match /ready/")


def test_http_check_connection_refused_is_unhealthy(registry):
    async def go():
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        server.close()
        await server.wait_closed()
        target = FakeTarget(pid=os.getpid())
        runner = runner_for(registry, target, check="http", url=f"http://127.0.0.1:{port}/")
        runner.start()
        found = await results(target, 1)
        await runner.stop()
        return found[0]

    result = run(go())
    assert not result.healthy and "ConnectError" in result.reason


def test_tcp_check_listening_then_closed(registry):
    async def go():
        server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        target = FakeTarget(pid=os.getpid())
        runner = runner_for(registry, target, check="tcp", port=port, every="20ms")
        runner.start()
        up = await runner.wait_healthy(5)
        server.close()
        await server.wait_closed()
        while target.results[-1][1].healthy:
            await asyncio.sleep(0.01)
        await runner.stop()
        return up, target.results[-1][1]

    up, last = run(go())
    assert up and not last.healthy and "127.0.0.1" in last.reason


def test_memory_leak_triggers_restart_recovery(registry):
    leak = """
        import sys, time
        hoard = []
        print("ready")
        sys.stdin.readline()  # leak only once the test saw a healthy first result
        while len(hoard) < 40:
            hoard.append(bytearray(4_000_000))
            hoard[-1][::4096] = b"x" * len(hoard[-1][::4096])
            time.sleep(0.02)
        time.sleep(60)
    """

    async def go():
        async with Child(leak) as child:
            await child.printed.wait()
            target = FakeTarget(pid=child.proc.pid)
            runner = runner_for(registry, target, check="memory", max_rss="80MB", every="50ms",
                                failures=2, recover="restart")
            runner.start()
            healthy = await runner.wait_healthy(5)
            child.proc.stdin.write(b"go\n")
            calls = await target.controller.wait_for_calls(1, 10)
            await runner.stop()
            return healthy, calls

    healthy, calls = run(go())
    assert healthy
    assert calls[0][0] == "restart" and calls[0][1].startswith("memory: rss")
    assert "> max 76.3MiB" in calls[0][1]


def test_memory_counts_the_whole_process_tree(registry):
    parent = """
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c",
            "import time; b = bytearray(60_000_000); b[::4096] = b'x' * len(b[::4096]); print('big', flush=True); time.sleep(60)"],
            stdout=subprocess.PIPE)
        child.stdout.readline()
        print("ready", flush=True)
        time.sleep(60)
    """

    async def go():
        async with Child(parent) as child:
            await child.printed.wait()
            target = FakeTarget(pid=child.proc.pid)
            runner = runner_for(registry, target, check="memory", max_rss="50MB")
            runner.start()
            found = await results(target, 1)
            await runner.stop()
            os.killpg(child.proc.pid, 9)  # the grandchild holds the pipe open too
            return found[0]

    result = run(go())
    assert not result.healthy and "> max 47.7MiB" in result.reason


def test_cpu_spinning_child_is_unhealthy_and_idle_one_is_healthy(registry):
    async def measure(code: str) -> Result:
        async with Child(code) as child:
            await child.printed.wait()
            target = FakeTarget(pid=child.proc.pid)
            # 3%: a spinning child on a 2-core box running 20 other things still gets ~10%; the idle one gets 0%
            runner = runner_for(registry, target, check="cpu", max_percent=3, window="600ms", every="100ms", failures=10)
            runner.start()
            while not target.results or target.results[-1][1].reason.startswith("measuring"):
                await asyncio.sleep(0.02)
            await runner.stop()
            return target.results[-1][1]

    async def go():
        return (await measure("print('go', flush=True)\nwhile True: pass"),
                await measure("import time; print('go', flush=True); time.sleep(60)"))

    spinning, idle = run(go())
    assert not spinning.healthy and "> max 3%" in spinning.reason
    assert idle.healthy and idle.reason.startswith("cpu ")


def test_log_pattern_sees_a_traceback_once(registry):
    code = """
        import sys, time
        print("working", flush=True)
        try:
            1 / 0
        except ZeroDivisionError:
            import traceback; traceback.print_exc(file=sys.stdout)
        sys.stdout.flush()
        time.sleep(60)
    """

    async def go():
        async with Child(code) as child:
            while not any("ZeroDivisionError" in line for line in child.lines):
                child.printed.clear()
                await child.printed.wait()
            target = FakeTarget(pid=child.proc.pid, lines=child.last_lines)
            runner = runner_for(registry, target, check="log_pattern", pattern="^Traceback", every="20ms",
                                failures=1, recover="restart")
            runner.start()
            calls = await target.controller.wait_for_calls(1, 5)
            found = await results(target, 2)
            await runner.stop()
            return calls, found

    calls, found = run(go())
    assert calls[0][0] == "restart" and "Traceback (most recent call last)" in calls[0][1]
    assert not found[0].healthy and found[1].healthy  # the same Traceback is not counted twice


def test_exec_check_exit_status_and_timeout_kills_the_command(registry, tmp_path):
    pidfile = tmp_path / "pid"
    slow = [sys.executable, "-c", f"import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(30)"]

    async def go():
        target = FakeTarget(pid=os.getpid())
        ok = runner_for(registry, target, check="exec", cmd=[sys.executable, "-c", "print('fine')"])
        bad = runner_for(registry, target, check="exec", cmd=f"{sys.executable} -c 'import sys; print(\"nope\"); sys.exit(3)'")
        hung = runner_for(registry, target, check="exec", cmd=slow, timeout="800ms")
        for r in (ok, bad, hung):
            r.start()
        found = await results(target, 3)
        for r in (ok, bad, hung):
            await r.stop()
        async with asyncio.timeout(5):  # killed and reaped, not left to run on
            while psutil.Process().children():
                await asyncio.sleep(0.01)
        return sorted((r.reason for r in found))

    reasons = run(go())
    assert reasons == ["exit 3: nope", "fine", "timed out after 0.8s"]
    if pidfile.exists():  # it may not even have started within the timeout on a busy machine
        assert not psutil.pid_exists(int(pidfile.read_text()))


def test_exec_recovery_gets_bot_environment(registry, tmp_path):
    out = tmp_path / "env.json"
    script = f"import json, os; json.dump({{k: v for k, v in os.environ.items() if k.startswith('SUPCTL_')}}, open({str(out)!r}, 'w'))"

    async def go():
        target = FakeTarget(bot="api", pid=os.getpid())
        runner = runner_for(registry, target, check="tcp", port=1, failures=1,
                            recover={"name": "exec", "cmd": [sys.executable, "-c", script]})
        runner.start()
        while not any(r.kind == "recovery" for r in runner.history()):
            await asyncio.sleep(0.01)
        await runner.stop()
        return [r for r in runner.history() if r.kind == "recovery"][0]

    record = run(go())
    assert record.ok, record.reason
    env = json.loads(out.read_text())
    assert env["SUPCTL_BOT"] == "api" and env["SUPCTL_INSTANCE"] == "0" and env["SUPCTL_PID"] == str(os.getpid())
    assert env["SUPCTL_REASON"].startswith("tcp: connect 127.0.0.1:1")


def test_exec_check_and_recovery_run_in_the_bots_working_directory(registry, tmp_path):
    """A relative path in cmd means the bot's directory, not the master's (a daemonized master sits in /)."""
    (tmp_path / "here.py").write_text("import os; print(os.getcwd()); open('seen', 'a').write(os.getcwd() + '\\n')")

    async def go():
        target = FakeTarget(pid=os.getpid(), cwd=str(tmp_path))
        check = runner_for(registry, target, check="exec", cmd=[sys.executable, "here.py"])
        recovery = runner_for(registry, target, check="tcp", port=1, failures=1,
                              recover={"name": "exec", "cmd": [sys.executable, "here.py"]})
        check.start()
        found = await results(target, 1)
        await check.stop()
        recovery.start()
        while not any(r.kind == "recovery" for r in recovery.history()):
            await asyncio.sleep(0.01)
        await recovery.stop()
        return found[0], next(r for r in recovery.history() if r.kind == "recovery")

    assert os.getcwd() != str(tmp_path)
    result, record = run(go())
    assert result.healthy and result.reason == str(tmp_path), result.reason
    assert record.ok, record.reason
    assert (tmp_path / "seen").read_text().splitlines() == [str(tmp_path)] * 2, "the check's run, then the recovery's"


def test_webhook_retries_in_the_background_until_delivered(registry):
    async def go():
        async with HttpServer([(503, ""), (200, "")]) as server:
            server.answering.clear()  # the first POST hangs until the recovery is on record
            target = FakeTarget(pid=os.getpid())
            runner = runner_for(registry, target, check="tcp", port=1, failures=1, every="1h",
                                recover={"name": "webhook", "url": server.url, "retries": 2, "backoff": "50ms"})
            runner.start()
            while not any(r.kind == "recovery" for r in runner.history()):
                await asyncio.sleep(0.01)
            recovered = [r for r in runner.history() if r.kind == "recovery"][0]
            server.answering.set()
            while len(server.requests) < 2:
                server.got.clear()
                await server.got.wait()
            await runner.stop()
            return recovered, server.requests

    # The recovery was on record while the server still held its first answer: recover() did not wait for delivery.
    recovered, requests = run(go())
    assert recovered.ok
    event = json.loads(requests[1])
    assert event["bot"] == "api" and event["event"] == "recovery" and event["reason"].startswith("tcp: connect")


def test_disk_check(registry, tmp_path):
    async def go():
        target = FakeTarget(pid=os.getpid())
        roomy = runner_for(registry, target, check="disk", path=str(tmp_path), min_free="1KB")
        full = runner_for(registry, target, check="disk", path=str(tmp_path), min_free="1000TB")
        roomy.start()
        await results(target, 1)
        full.start()
        found = await results(target, 2)
        await roomy.stop()
        await full.stop()
        return found

    roomy, full = run(go())
    assert roomy.healthy and not full.healthy and "< min 909.5TiB" in full.reason


def test_bus_heartbeat(registry):
    class Bus:
        def __init__(self) -> None:
            self.published: dict[tuple[str, str], float] = {}

        def last_publish_time(self, bot: str, topic: str, instance: int | None = None) -> float | None:
            return self.published.get((bot, topic)) if instance == 0 else None

    async def one(bus: Bus | None) -> Result:
        target = FakeTarget(pid=os.getpid(), bus=bus)
        runner = runner_for(registry, target, check="bus_heartbeat", topic="prices.btc", within="1s")
        runner.start()
        found = await results(target, 1)
        await runner.stop()
        return found[0]

    async def go():
        fresh, stale, silent = Bus(), Bus(), Bus()
        fresh.published[("api", "prices.btc")] = time.monotonic()
        stale.published[("api", "prices.btc")] = time.monotonic() - 5
        return await one(None), await one(fresh), await one(stale), await one(silent)

    none, fresh, stale, silent = run(go())
    assert none == Result.fail("no bus")
    assert fresh.healthy
    assert not stale.healthy and "within 1s" in stale.reason
    assert silent == Result.fail("nothing published on prices.btc yet")
