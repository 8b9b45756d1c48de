"""The bus inside a real master: bots started by it talk to each other, resync after a restart, hear process
events; `supctl bus` and `supctl status` see it."""

from __future__ import annotations

import json
import subprocess

from harness import SUPCTL, bot, wait_until

TRIO = f'''
    [supervisor]
    state_dir = "state"
    [defaults]
    start_grace = "100ms"
    [bots.pub]
    cmd = {bot("bus_node", "pub")}
    [bots.sub]
    cmd = {bot("bus_node", "sub")}
    [bots.req]
    cmd = {bot("bus_node", "req")}
    depends_on = ["sub"]
'''


def test_children_publish_subscribe_and_request(master) -> None:
    m = master(TRIO)
    got = wait_until(lambda: [x for x in m.json_lines("sub") if x["bot"] == "pub"][:3] or None, 15, "prices at sub")
    assert got[0]["topic"] == "prices.btc" and isinstance(got[0]["data"]["seq"], int)
    replies = wait_until(lambda: [x for x in m.json_lines("req") if "pong" in x] or None, 15, "a reply at req")
    assert replies[0]["by"] == ["sub", 0] and replies[0]["asker"] == ["req", 0]
    rows = {r["bot"]: r for r in json.loads(m.ctl("status", "--json").stdout)["instances"]}
    assert rows["pub"]["bus"].startswith("on ") and rows["sub"]["bus"].startswith("on ")
    peers = m.ctl("bus", "peers").stdout.split()
    assert {"pub:0", "sub:0", "req:0"} <= set(peers)


def test_restarted_subscriber_gets_the_retained_value_at_once(master) -> None:
    m = master(TRIO)
    wait_until(lambda: m.json_lines("sub") or None, 15, "first price")
    before = len(m.json_lines("sub"))
    assert m.ctl("restart", "sub").returncode == 0
    after = wait_until(lambda: m.json_lines("sub")[before:] or None, 15, "a price after the restart")
    assert after[0]["retained"] is True and after[0]["bot"] == "pub"


def test_process_events_are_published(master) -> None:
    m = master('''
        [supervisor]
        state_dir = "state"
        [bots.crash]
        cmd = ["sh", "-c", "sleep 1; exit 3"]  # a second per life: `supctl bus sub` takes ~0.8 s to start on a busy VM
        start_grace = "100ms"
        backoff = { initial = "100ms" }
        restart_limit = { count = 2, window = "1m" }
        autostart = false
    ''')
    # A retained probe tells when the subscriber is in place; only then does the bot start, so no event is missed.
    assert m.ctl("bus", "pub", "supctl.events.crash", '{"kind": "probe"}', "--retain").returncode == 0
    sub = subprocess.Popen([*SUPCTL, "bus", "sub", "supctl.events.crash"], env=m.env(), stdout=subprocess.PIPE, text=True)
    try:
        assert json.loads(sub.stdout.readline())["data"] == {"kind": "probe"}
        assert m.ctl("start", "crash").returncode in (0, 1)  # 1: it ends FATAL, as it should
        kinds: list[dict] = []
        while not any(e["kind"] == "fatal" for e in kinds):
            line = sub.stdout.readline()
            assert line, "supctl bus sub ended before the fatal event"
            kinds.append(json.loads(line)["data"])
    finally:
        sub.terminate()
        sub.wait(10)
    seq = [e["kind"] for e in kinds]
    assert "exited" in seq and "backoff" in seq and "started" in seq, seq
    assert any(e["kind"] == "exited" and e["exit_code"] == 3 for e in kinds)


def test_cli_publishes_retained_and_requests(master) -> None:
    m = master(TRIO)
    wait_until(lambda: [x for x in m.json_lines("req") if "pong" in x] or None, 15, "sub answering")
    assert m.ctl("bus", "pub", "prices.eth", '{"seq": -1}', "--retain").returncode == 0
    seen = wait_until(lambda: [x for x in m.json_lines("sub") if x["topic"] == "prices.eth"] or None, 15, "eth at sub")
    assert seen[0]["bot"] == "supctl" and seen[0]["data"] == {"seq": -1}
    reply = m.ctl("bus", "request", "sub.ping", '"hi"')
    assert reply.returncode == 0 and json.loads(reply.stdout)["pong"] == "hi"
    bad = m.ctl("bus", "pub", "x", "{not json")
    assert bad.returncode == 1 and "must be JSON" in bad.stderr
