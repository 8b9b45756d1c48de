"""Fleet benchmark: bots on two real masters bridged through NATS vs nats-py client to client.

    .venv/bin/python bench/fleet.py [--quick] [--rounds N]

One nats-server with JetStream; two `supctl start -f` masters with [bus.nats] exporting and
importing bench.>; the publisher is a bus client of master A, the subscriber one of master B
(bench/bus.py's roles, so both sides run exactly the code bench/bus.py measures). The baseline
is the same pair of roles speaking nats-py straight to the same nats-server. Publishers keep a
window of unacknowledged messages (acks travel back the same way), every count is checked, and
the two take turns in N rounds (median shown). Request/reply: requester on A, responder on B.
Idle CPU: a bridged master and a master without [bus.nats], side by side, with no traffic.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bus as busbench  # noqa: E402  (bench/bus.py: the roles and their process wrapper)
from baseline import free_port, wait_until  # noqa: E402

from supervisor.bus.blocking import BlockingClient  # noqa: E402
from supervisor.control.client import Client  # noqa: E402
from supervisor.control.protocol import BusTokenReply, BusTokenRequest  # noqa: E402
from supervisor.core.errors import BusError  # noqa: E402

LAT_ROUNDS = 10
IDLE_SECONDS = 10.0


class MasterProc:
    """A real master on a generated procfile, in the foreground, killed with its group at the end."""

    def __init__(self, root: Path, name: str, nats_url: str | None) -> None:
        self.dir = root / name
        self.dir.mkdir()
        bridge = textwrap.dedent(f"""
            [bus.nats]
            url = "{nats_url}"
            host = "{name}"
            fleet = "bench"
            export = ["bench.>"]
            import = ["bench.>"]
            """) if nats_url else ""
        (self.dir / "procfile.toml").write_text(textwrap.dedent("""
            [supervisor]
            state_dir = "state"
            [bots.idle]
            cmd = ["sleep", "100000"]
            """) + bridge)
        self.log = self.dir / "state" / "logs" / "supervisor.log"
        self.proc = subprocess.Popen([sys.executable, "-m", "supervisor.cli.main", "start", "-f", "procfile.toml"],
                                     cwd=self.dir, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            wait_until(lambda: Path(self.sock).exists() and "idle:0 STARTING -> RUNNING" in self.text(), 30, f"master {name}")
            if nats_url:
                wait_until(lambda: "nats: connected" in self.text(), 30, f"master {name} on NATS")
        except BaseException:
            self.stop()
            raise

    def text(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    @property
    def sock(self) -> str:
        return str(self.dir / "state" / "bus.sock")

    @property
    def token(self) -> str:
        """A fresh token from the master, as `supctl bus` gets one: each is good for one bus connection."""
        with Client(str(self.dir / "state" / "control.sock")) as control:
            reply = control.call(BusTokenRequest())
        assert isinstance(reply, BusTokenReply), reply
        return reply.token

    def cpu(self) -> float:
        t = psutil.Process(self.proc.pid).cpu_times()
        return t.user + t.system

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(30)


def pump(pub_addr: str, pub_token: str, sub_addr: str, sub_token: str, kind: str, n: int, size: int) -> float:
    """Publisher on one side, subscriber on the other; delivered messages per second."""
    sub = busbench.Proc("sub", kind, sub_addr, sub_token, str(n), str(size), "0")
    assert sub.line() == "ready"
    pub = busbench.Proc("pub", kind, pub_addr, pub_token, str(n), str(size), "1")
    assert pub.line() == "ready"
    pub.send()
    result = sub.line()
    start = pub.line()["start"]  # type: ignore[index]
    pub.finish()
    if result["count"] != n or result["dropped"]:  # type: ignore[index]
        raise RuntimeError(f"{kind}: lost messages: {result}")
    for p in (pub, sub):
        p.p.wait(30)
    return n / (result["end"] - start)  # type: ignore[index]


def served_across(a: MasterProc) -> bool:
    with BlockingClient(a.sock, a.token) as client:
        try:
            client.request("bench.echo", b"x", timeout=2)
            return True
        except BusError:
            return False


def main() -> None:
    quick = "--quick" in sys.argv
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 3
    scale = 5 if quick else 1
    n, size, nreq = 200_000 // scale, 64, 10_000 // scale
    bridged: list[float] = []
    direct: list[float] = []
    (tmp := Path(tempfile.mkdtemp(prefix="supctl-fleet-bench-")))
    exe = busbench.ensure_nats()
    port = free_port()
    server = subprocess.Popen([exe, "-js", "-a", "127.0.0.1", "-p", str(port), "-sd", str(tmp / "js")],
                              stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"nats://127.0.0.1:{port}"
    masters: list[MasterProc] = []
    try:
        wait_until(lambda: subprocess.run([sys.executable, "-c", f"import socket; socket.create_connection(('127.0.0.1', {port}), 1)"],
                                          capture_output=True).returncode == 0, 10, "nats-server")
        a, b = MasterProc(tmp, "alpha", url), MasterProc(tmp, "beta", url)
        plain = MasterProc(tmp, "plain", None)
        masters = [a, b, plain]
        # idle first, before any traffic: CPU seconds over the same window, bridged vs not
        cpu0 = {m.dir.name: m.cpu() for m in masters}
        time.sleep(IDLE_SECONDS)  # the measurement window itself, not a synchronisation
        idle = {m.dir.name: (m.cpu() - cpu0[m.dir.name]) * 1000 for m in masters}
        for _ in range(rounds):
            bridged.append(pump(a.sock, a.token, b.sock, b.token, "supctl", n, size))
            direct.append(pump(url, "-", url, "-", "nats", n, size))
        rep_b = busbench.Proc("rep", "supctl", b.sock, b.token)
        assert rep_b.line() == "ready"
        wait_until(lambda: served_across(a), 30, "beta's responder seen from alpha")
        req_a = busbench.Proc("req", "supctl", a.sock, a.token)
        assert req_a.line() == "ready"
        rep_n = busbench.Proc("rep", "nats", url, "-")
        assert rep_n.line() == "ready"
        req_n = busbench.Proc("req", "nats", url, "-")
        assert req_n.line() == "ready"
        lat = busbench.alternate({"bridge": (rep_b, req_a), "nats": (rep_n, req_n)}, nreq, LAT_ROUNDS)
        dropped = [line for m in (a, b) for line in m.text().splitlines() if "dropped" in line]
    finally:
        for m in masters:
            m.stop()
        os.killpg(server.pid, signal.SIGKILL)
        server.wait(10)
    med = statistics.median
    print(f"\nmedian of {rounds} rounds; bridge = bot on master A -> NATS -> master B -> bot, nats = nats-py -> nats-py")
    print(f"{'scenario':<24}{'bridge':>14}{'nats-py':>14}{'ratio':>9}")
    s_, n_ = med(bridged), med(direct)
    print(f"{'pub->sub 64 B':<24}{s_:>12,.0f}/s{n_:>12,.0f}/s{s_ / n_:>8.2f}x")
    for i, key in enumerate(("p50", "p99")):
        s_, n_ = med(r[i] for r in lat["bridge"]), med(r[i] for r in lat["nats"])
        print(f"{'req/reply ' + key:<24}{s_:>12.0f}us{n_:>12.0f}us{s_ / n_:>8.2f}x")
    print(f"{'idle CPU, ' + str(int(IDLE_SECONDS)) + ' s':<24}{idle['alpha']:>12.1f}ms{idle['plain']:>12.1f}ms"
          "   (bridged master vs master without [bus.nats])")
    print(f"\n{n} messages x {rounds} rounds, every count checked (0 lost); {nreq} requests in {LAT_ROUNDS} alternating rounds")
    if dropped:
        print("master log lines about drops:", *dropped, sep="\n  ")


if __name__ == "__main__":
    main()
