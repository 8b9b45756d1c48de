"""The HTTP server against supervisord's XML-RPC, measured in the same run: scrape latency, memory, idle CPU, events.

Run: .venv/bin/python bench/http.py [--bots 100] [--requests 500] [--idle 30] [--crashes 30]

supctl is pip-installed into bench/.venvs/supctl as users install it, supervisord comes from PyPI into
bench/.venvs/supervisor (neither into the project's environment). Both masters run in the
foreground on the same 100 `sleep` programs; both are asked over HTTP/1.1 on loopback with one kept-alive
connection from this process (http.client for ours, xmlrpc.client for theirs, which parses the XML reply):
  latency   GET /metrics and GET /status vs getAllProcessInfo (what every supervisord exporter calls),
            --requests each after 20 warm-up requests; median and p99.
  rss       master RSS with 100 idle bots: without [http], with [http] before any request, and with
            [http] after the latency run (h11, prometheus-client and their caches loaded).
  idle      master CPU seconds over --idle s with a dashboard connected (what the page does when nothing
            happens: /events held open, a usage sample pushed on it every 5 s), beside supervisord's idle CPU and
            a supctl master without [http] in the same window.
  events    SIGKILL a bot -> its `exited` event read from /events (what the browser gets), --crashes times.
"""

from __future__ import annotations

import sys

BENCH = sys.path.pop(0)  # this file is bench/http.py: it must not shadow the standard library's http package
import argparse  # noqa: E402
import http.client  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import xmlrpc.client  # noqa: E402
from pathlib import Path  # noqa: E402

import psutil  # noqa: E402

sys.path.append(BENCH)
from baseline import Supervisord, free_port, supctl_venv, wait_until  # noqa: E402
from engine import MIB, Supctl, idle_cost, pct, step  # noqa: E402

WARMUP = 20


def row(what: str, ours: float, theirs: float | None, unit: str, target: str = "") -> str:
    ratio = f"{ours / theirs:.2f}x" if theirs else "-"
    other = f"{theirs:>12.2f}" if theirs is not None else f"{'-':>12}"
    return f"{what:<38} {ours:>10.2f} {other} {unit:<6} {ratio:>7}  {target}"


def supctl_fleet(venv: Path, tmp: Path, n: int, port: int | None) -> Supctl:
    d = tmp / f"supctl-{'http' if port else 'plain'}"
    http = f'[http]\nlisten = "127.0.0.1:{port}"\n' if port else ""
    return Supctl(venv, d, f'{http}[bots.idle]\ncmd = ["sleep", "3600"]\ninstances = {n}\nstart_grace = "0s"\n'
                     f'backoff = {{ initial = "0s" }}\nrestart_limit = {{ count = 100000 }}\n')


def get(conn: http.client.HTTPConnection, path: str) -> bytes:
    conn.request("GET", path)
    resp = conn.getresponse()
    body = resp.read()
    if resp.status not in (200, 503):
        raise SystemExit(f"GET {path}: {resp.status} {body[:200]!r}")
    return body


def timed(call, n: int) -> list[float]:
    for _ in range(WARMUP):
        call()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        call()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def all_running(port: int, n: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        return get(conn, "/metrics").count(b'state="RUNNING"} 1.0') == n
    except OSError:
        return False


def rss_mib(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / MIB


class Dashboard(threading.Thread):
    """What an open dashboard tab asks of the master: the event stream (usage samples arrive on it every 5 s);
    /status only on a process event, of which an idle fleet has none."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port, self.stop = port, threading.Event()
        self.events = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        self.events.request("GET", "/events")
        self.stream = self.events.getresponse()

    def run(self) -> None:
        self.stream.readline()  # the stream is open; reading it is the browser's job, the master only writes
        self.stop.wait()


def crash_to_event(port: int, pids: list[int], crashes: int) -> list[float]:
    """SIGKILL one bot at a time; time until /events delivers its `exited` event."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/events")
    stream = conn.getresponse()
    stream.readline(), stream.readline()  # retry:, ": connected"
    out = []
    for pid in pids[:crashes]:
        t0 = time.perf_counter()
        os.kill(pid, signal.SIGKILL)
        needle = '"kind":"exited","bot":"idle"'.encode()
        while True:
            line = stream.readline()
            if not line:
                raise SystemExit("event stream closed")
            if line.startswith(b"data: ") and needle in line and f'"pid":{pid}'.encode() in line:
                break
        out.append((time.perf_counter() - t0) * 1000)
    conn.close()
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bots", type=int, default=100)
    p.add_argument("--requests", type=int, default=500)
    p.add_argument("--idle", type=float, default=30.0)
    p.add_argument("--crashes", type=int, default=30)
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="supctl-bench-http-") as t:
        tmp = Path(t)
        step("pip install supctl into bench/.venvs/supctl")
        venv = supctl_venv()
        step(f"supctl without [http], {a.bots} bots")
        plain = supctl_fleet(venv, tmp, a.bots, None)
        plain.start()
        log = plain.procfile.parent / "state" / "logs" / "supervisor.log"
        wait_until(lambda: log.exists() and log.read_text().count("-> RUNNING") >= a.bots, 120, "RUNNING")
        time.sleep(2)  # past start-up work, as bench/engine.py's idle measure
        rss_off = rss_mib(plain.proc.pid)

        port = free_port()
        step(f"supctl with [http] on 127.0.0.1:{port}")
        ours = supctl_fleet(venv, tmp, a.bots, port)
        ours.start()
        wait_until(lambda: all_running(port, a.bots), 120, "every bot RUNNING over /metrics")
        time.sleep(2)
        rss_on = rss_mib(ours.proc.pid)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        step("latency: /metrics, /status")
        master = psutil.Process(ours.proc.pid)
        cpu0 = sum(master.cpu_times()[:2])
        metrics = timed(lambda: get(conn, "/metrics"), a.requests)
        cpu1 = sum(master.cpu_times()[:2])
        status = timed(lambda: get(conn, "/status"), a.requests)
        cpu2 = sum(master.cpu_times()[:2])
        per = a.requests + WARMUP
        metrics_cpu, status_cpu = (cpu1 - cpu0) / per * 1000, (cpu2 - cpu1) / per * 1000
        rss_used = rss_mib(ours.proc.pid)

        sv_port = free_port()
        sv_dir = tmp / "sv"
        sv_dir.mkdir()
        sv = Supervisord(sv_dir, f"[inet_http_server]\nport=127.0.0.1:{sv_port}\n[program:idle]\ncommand=sleep 3600\n"
                                 f"numprocs={a.bots}\nprocess_name=%(program_name)s-%(process_num)d\nstartsecs=0\n")
        step("supervisord with the same programs")
        sv.start()
        rpc = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{sv_port}/RPC2")

        def sv_running() -> bool:
            try:
                return sum(i["statename"] == "RUNNING" for i in rpc.supervisor.getAllProcessInfo()) == a.bots
            except OSError:
                return False

        wait_until(sv_running, 120, "supervisord RUNNING")
        step("latency: getAllProcessInfo")
        sv_master = psutil.Process(sv.proc.pid)
        cpu0 = sum(sv_master.cpu_times()[:2])
        xml = timed(rpc.supervisor.getAllProcessInfo, a.requests)
        xml_cpu = (sum(sv_master.cpu_times()[:2]) - cpu0) / (a.requests + WARMUP) * 1000

        step(f"idle {a.idle:.0f}s with a dashboard connected to supctl")
        dash = Dashboard(port)
        dash.start()
        idle = idle_cost({"supctl": ours.proc.pid, "plain": plain.proc.pid, "supervisord": sv.proc.pid}, a.idle)
        dash.stop.set()
        dash.join()
        dash.events.close()
        sv.stop()
        plain.stop()

        step(f"crash -> SSE event, {a.crashes} crashes")
        pids = [c.pid for c in psutil.Process(ours.proc.pid).children() if c.name() == "sleep"]
        events = crash_to_event(port, pids, a.crashes)
        ours.stop()

    print(f"HTTP, supctl vs supervisord in the same run ({a.bots} bots, {a.requests} requests, {os.cpu_count()} cores)")
    print(f"{'measure':<38} {'supctl':>10} {'supervisord':>12} {'unit':<6} {'ratio':>7}  target")
    print(row("/metrics median vs getAllProcessInfo", statistics.median(metrics), statistics.median(xml), "ms", "< 5 ms, < 1x"))
    print(row("/metrics p99", pct(metrics, 99), pct(xml, 99), "ms", ""))
    print(row("/status median vs getAllProcessInfo", statistics.median(status), statistics.median(xml), "ms", ""))
    print(row("/status p99", pct(status, 99), pct(xml, 99), "ms", ""))
    print(row("master CPU per /metrics vs per call", metrics_cpu, xml_cpu, "ms", ""))
    print(row("master CPU per /status vs per call", status_cpu, xml_cpu, "ms", ""))
    print(row(f"master CPU {a.idle:.0f}s idle, dashboard on", idle["supctl"][2], idle["supervisord"][2], "CPU-s", "<= 1x"))
    print(row("  same window, supctl without [http]", idle["plain"][2], idle["supervisord"][2], "CPU-s", ""))
    print(row("master RSS, HTTP off", rss_off, None, "MiB"))
    print(row("master RSS, HTTP on (idle)", rss_on, None, "MiB", f"+{rss_on - rss_off:.2f} (target <= +8)"))
    print(row("master RSS, HTTP on (after the bench)", rss_used, idle["supervisord"][0], "MiB", f"+{rss_used - rss_off:.2f}"))
    print(row("crash -> SSE event median", statistics.median(events), None, "ms"))
    print(row("crash -> SSE event p99", pct(events, 99), None, "ms"))


if __name__ == "__main__":
    sys.exit(main())
