"""Two real masters with separate state dirs, bridged through a real nats-server; `supctl fleet`.

Where root may create network namespaces, each master runs in its own namespace whose only link
goes to the NATS server's namespace, so the two share nothing but NATS (and the test proves it).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest
from harness import PY, Master, bot, toml_argv, wait_until
from http_helpers import HTTP, base_url
from nats_helpers import Hosts, NatsServer, needs_nats

pytestmark = [needs_nats, pytest.mark.slow, pytest.mark.timeout(180)]


def procfile(host: str, url: str, bots: str, extra: str = "") -> str:
    patterns = '["prices.>", "calc.>", "state.>"]'
    return f"""
[supervisor]
state_dir = "state"
{bots}
[bus.nats]
url = "{url}"
host = "{host}"
fleet = "t{os.getpid()}"
export = {patterns}
import = {patterns}
reconnect = {{ initial = "50ms", max = "300ms" }}
{extra}
"""


@pytest.fixture
def hosts():
    h = Hosts(f"sf{os.getpid() % 100000}").setup()
    yield h
    h.teardown()


@pytest.fixture
def started(tmp_path: Path):
    masters: list[Master] = []

    def start(name: str, text: str, prefix: list[str] | None = None) -> Master:
        (tmp_path / name).mkdir()
        m = Master(tmp_path / name, text, uuid.uuid4().hex, prefix)
        masters.append(m)
        return m.start()

    yield start
    leftovers = [line for m in masters for line in m.cleanup()]
    assert not leftovers, "processes left running after the test:\n" + "\n".join(leftovers)


def test_two_masters_share_one_bus_through_nats(tmp_path: Path, hosts: Hosts, started) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "nats").mkdir()
    server = NatsServer(tmp_path / "nats", listen="0.0.0.0" if hosts.isolated else "127.0.0.1",
                        netns=hosts.nats_ns).start()
    try:
        url = {h: f"nats://{hosts.nats_addr[h]}:{server.port}" for h in ("alpha", "beta")}
        listen = f'[bots.listen]\ncmd = {toml_argv(bot("fleet_node", "prices.>"))}\n'
        calc = (f'[bots.calc]\ncmd = {toml_argv(bot("fleet_node", "prices.>", "calc.double"))}\n'
                f'[bots.late]\ncmd = {toml_argv(bot("fleet_node", "state.>"))}\nautostart = false\n')
        alpha = started("alpha", procfile("alpha", url["alpha"], listen), hosts.prefix["alpha"])
        beta = started("beta", procfile("beta", url["beta"], calc), hosts.prefix["beta"])
        for m, name in ((alpha, "listen"), (beta, "calc")):
            m.wait_line(r"nats: connected to")
            m.wait_line(r'^"ready"$', path=m.logs / f"{name}.log")
        if hosts.isolated:
            probe = subprocess.run([*hosts.prefix["alpha"], PY, "-c",
                                    f"import socket; socket.create_connection(({hosts.addr['beta']!r}, 9), 2)"],
                                   capture_output=True, text=True, timeout=30)
            assert probe.returncode != 0 and "unreachable" in probe.stderr, "alpha cannot reach beta except by NATS"

        # pub/sub both ways, msg.host tells where it came from
        assert alpha.ctl("bus", "pub", "prices.btc", '{"bid": 1}').returncode == 0
        beta.wait_line(r'"topic": "prices.btc", "data": \{"bid": 1\}, "bot": "supctl", "host": "alpha"',
                       path=beta.logs / "calc.log")
        alpha.wait_line(r'"topic": "prices.btc", .*"host": ""', path=alpha.logs / "listen.log")
        assert beta.ctl("bus", "pub", "prices.eth", "2").returncode == 0
        alpha.wait_line(r'"topic": "prices.eth", "data": 2, "bot": "supctl", "host": "beta"', path=alpha.logs / "listen.log")

        # request/reply across hosts (once beta's serve reached NATS)
        def asked() -> str | None:
            out = alpha.ctl("bus", "request", "calc.double", "21")
            return out.stdout if out.returncode == 0 else None

        assert json.loads(wait_until(asked, 30, "a reply from beta")) == {"double": 42, "asker": ["supctl", "alpha"]}
        nobody = alpha.ctl("bus", "request", "calc.nobody", "1")
        assert nobody.returncode != 0 and "no responder for 'calc.nobody'" in nobody.stderr

        # a retained value reaches a bot that starts later on the other host
        assert alpha.ctl("bus", "pub", "--retain", "state.mode", '"live"').returncode == 0
        assert beta.ctl("start", "late").returncode == 0
        beta.wait_line(r'"topic": "state.mode", "data": "live", "bot": "supctl", "host": "alpha", "retained": true',
                       path=beta.logs / "late.log")

        # presence across hosts
        def remote_peers() -> str | None:
            out = alpha.ctl("bus", "peers").stdout
            return out if "calc:0 on beta" in out and "late:0 on beta" in out else None

        peers = wait_until(remote_peers, 30, "beta's bots in alpha's peers")
        assert "listen:0\n" in peers and "late:0 on beta" in peers

        # supctl status shows the bridge
        status = alpha.ctl("status")
        assert "nats: connected" in status.stdout and "as alpha in fleet" in status.stdout, status.stdout

        # supctl fleet status: every master, one table with a HOST column
        fleet = alpha.ctl("fleet", "status", "--json", "--timeout", "2")
        assert fleet.returncode == 0, fleet.stderr
        answers = {a["host"]: a for a in json.loads(fleet.stdout)}
        assert set(answers) == {"alpha", "beta"}
        assert {r["bot"] for r in answers["beta"]["status"]["instances"]} == {"calc", "late"}
        assert '"op"' not in fleet.stdout and answers["beta"]["action"] is None
        assert answers["beta"]["procfile"] == str(beta.procfile) and answers["beta"]["pid"] == beta.pid
        assert answers["alpha"]["status"]["bridge"]["state"] == "connected"
        table = alpha.ctl("fleet", "status", "--timeout", "2").stdout
        assert table.splitlines()[0].split()[:2] == ["HOST", "BOT"] and re.search(r"^beta\s+calc\s+0\s+RUNNING", table, re.M)

        # supctl fleet restart HOST:BOT acts on the other master, which logs where it came from
        before = beta.transitions("calc:0")
        done = alpha.ctl("fleet", "restart", "beta:calc")
        assert done.returncode == 0 and done.stdout.startswith("beta: "), (done.stdout, done.stderr)
        beta.wait_line(r"fleet: restart calc requested by \S+@\S+ \(supctl pid \d+\)")
        assert len(beta.transitions("calc:0")) > len(before)
        assert alpha.ctl("fleet", "stop", "beta:late").returncode == 0
        assert re.search(r"^late\s+0\s+STOPPED", beta.ctl("status").stdout, re.M)
        missing = alpha.ctl("fleet", "restart", "gamma:calc")
        assert missing.returncode == 1 and "no master on host 'gamma'" in missing.stderr
    finally:
        server.stop()


def test_nats_down_at_start_then_up_and_wrong_credentials(tmp_path: Path, started) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "nats").mkdir()
    server = NatsServer(tmp_path / "nats", conf='authorization { user: fleet, password: "s3cret" }\n')
    sleeper = f'[bots.idle]\ncmd = {toml_argv(bot("fleet_node", "prices.>"))}\n'
    url = f"nats://fleet:s3cret@127.0.0.1:{server.port}"
    early = started("early", procfile("early", url, sleeper, HTTP))
    early.wait_transition("idle", "RUNNING")
    early.wait_line(r"nats: disconnected: ")
    assert "nats: disconnected" in early.ctl("status").stdout
    metrics = f"{base_url(early)}/metrics"
    assert re.search(r"^supctl_nats_connected 0\.0$", httpx.get(metrics).text, re.M)
    server.start()
    try:
        early.wait_line(r"nats: connected to 127.0.0.1:")
        scraped = httpx.get(metrics).text
        assert re.search(r"^supctl_nats_connected 1\.0$", scraped, re.M)
        assert re.search(r"^supctl_nats_dropped_total 0\.0$", scraped, re.M)
        listed = {r["procfile"]: r for r in json.loads(early.ctl("ls", "--json").stdout)}
        assert listed[str(early.procfile)]["nats"] == "connected"
        assert re.search(r"^PROCFILE .* NATS$", early.ctl("ls").stdout, re.M)
        assert "s3cret" not in early.text() and "s3cret" not in early.ctl("status").stdout, "no password in log or status"
        assert len(early.wait_line(r"nats: disconnected: ")) == 1, "one line per state change, not per retry"
        intruder = started("intruder", procfile("intruder", f"nats://fleet:wrong@127.0.0.1:{server.port}", sleeper))
        intruder.wait_transition("idle", "RUNNING")
        intruder.wait_line(r"nats: refused: .*[Aa]uthorization [Vv]iolation")
        status = intruder.ctl("status").stdout
        assert "nats: refused" in status and "uthorization" in status, status
        bad = intruder.ctl("fleet", "status")
        assert bad.returncode == 1 and "uthorization" in bad.stderr
        good = early.ctl("fleet", "status", "--json")
        assert [a["host"] for a in json.loads(good.stdout)] == ["early"], "the intruder never joined"
        assert len(intruder.wait_line(r"nats: refused")) == 1
    finally:
        server.stop()
