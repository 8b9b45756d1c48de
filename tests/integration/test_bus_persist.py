"""`[bus] persist` through real masters: a retained value on a persisted topic reaches a bot that subscribes after a
master restart and after the master was killed with SIGKILL (what a reboot leaves); other topics and cleared values
are gone. Real masters, real bots on the real bus; waits follow the logs and files with deadlines."""

from __future__ import annotations

import json
import signal

from harness import Master, bot, wait_until

from supervisor.control.retained_disk import file_name

HEAD = '''
    [supervisor]
    state_dir = "state"
    [bus]
    persist = ["state.>"]
'''
WRITER = f'''
    [bots.writer]
    cmd = {bot("persister", "write")}
'''
READER = f'''
    [bots.reader]
    cmd = {bot("persister", "read")}
'''


def retained(m: Master, count: int) -> list[list]:
    found = m.wait_line(r"^retained (.*)$", count=count, path=m.logs / "reader.log")
    return json.loads(found[count - 1].group(1))


def test_persisted_retained_values_survive_a_restart_and_a_kill(master) -> None:
    m = master(HEAD + WRITER)
    m.wait_line(r"^published$", path=m.logs / "writer.log")
    assert m.stop() == 0
    assert sorted(p.name for p in (m.state_dir / "retained").iterdir()) == [file_name("state.x")], \
        "only the persisted topic, and the cleared one is gone from disk"

    again = master(HEAD + READER)
    assert retained(again, 1) == [["state.x", {"n": 42}, "writer", 0]], \
        "state.x is back under its publisher's name; prices.x (not persisted) and state.gone (cleared) are not"
    again.wait_line(r"bus: restored 1 persisted retained values")
    again.wait_line(r"^published$", path=again.logs / "reader.log")
    wait_until(lambda: (again.state_dir / "retained" / file_name("state.y")).exists(), 30, "state.y written to disk")
    again.signal(signal.SIGKILL)
    again.wait_exit()

    third = master(HEAD + READER)
    assert retained(third, 2) == [["state.x", {"n": 42}, "writer", 0], ["state.y", {"by": "reader"}, "reader", 0]], \
        "written while the master ran, so a SIGKILL loses nothing"
    assert third.stop() == 0

    fourth = master(HEAD.replace('"state.>"', '"other.>"') + READER)
    assert retained(fourth, 3) == [], "a topic no pattern matches any more is not restored"
    assert fourth.stop() == 0
