"""Checkpoints through the master: a bot resumes after its own crash, a master restart and a master killed with
SIGKILL (what a reboot leaves: no master, no bots, only state_dir); one instance never sees another's.

Real masters, real bots on the real bus; waits follow the bots' logs with a deadline."""

from __future__ import annotations

import json
import signal

from harness import Master, bot

PROCFILE = f'''
    [supervisor]
    state_dir = "state"
    [bus]
    checkpoints = 2
    [bots.keeper]
    cmd = {bot("keeper", "async", 3)}
    start_grace = "0s"
    backoff = {{ initial = "10ms" }}
    [bots.blocker]
    cmd = {bot("keeper", "blocking", 0)}
    [bots.other]
    cmd = {bot("keeper", "async", 0)}
    instances = 2
'''


def restored(m: Master, log: str, count: int) -> list[dict | None]:
    return [json.loads(x.group(1)) for x in m.wait_line(r"^restored (.*)$", count=count, path=m.logs / log)]


def test_a_bot_resumes_after_its_crash_a_master_restart_and_a_kill(master) -> None:
    m = master(PROCFILE)
    assert restored(m, "keeper.log", 1) == [None]
    m.wait_line(r"^saved 3 3$", path=m.logs / "keeper.log")
    assert restored(m, "keeper.log", 2)[1] == {"n": 3, "by": ["keeper", 0]}, "resumed after its own crash"
    m.wait_line(r"^saved 6 6$", path=m.logs / "keeper.log")
    assert [x.group(0) for x in m.wait_line(r"^saved 3 \d+$", path=m.logs / "blocker.log")] == ["saved 3 3"]
    assert restored(m, "other-0.log", 1) == [None] and restored(m, "other-1.log", 1) == [None], "not keeper's state"
    m.wait_line(r"^saved 3 3$", path=m.logs / "other-1.log")
    kept = sorted(p.name for p in (m.state_dir / "checkpoints" / "keeper" / "0").iterdir())
    assert kept == ["000000000005.ckpt", "000000000006.ckpt"], "[bus] checkpoints = 2: the older ones pruned"
    assert m.stop() == 0

    again = master(PROCFILE)
    assert restored(again, "keeper.log", 3)[2] == {"n": 6, "by": ["keeper", 0]}, "resumed after a master restart"
    assert restored(again, "blocker.log", 2)[1] == {"n": 3}
    assert restored(again, "other-1.log", 2)[1] == {"n": 3, "by": ["other", 1]}
    again.wait_line(r"^saved 9 9$", path=again.logs / "keeper.log")
    again.signal(signal.SIGKILL)
    again.wait_exit()

    third = master(PROCFILE)
    assert restored(third, "keeper.log", 4)[3] == {"n": 9, "by": ["keeper", 0]}, "resumed after SIGKILL of the master"
    assert third.stop() == 0


def test_a_corrupt_checkpoint_falls_back_to_the_one_before(master, tmp_path) -> None:
    m = master(PROCFILE)
    m.wait_line(r"^saved 3 3$", path=m.logs / "blocker.log")
    assert m.stop() == 0
    newest = m.state_dir / "checkpoints" / "blocker" / "0" / "000000000003.ckpt"
    data = bytearray(newest.read_bytes())
    data[-2] ^= 0xFF  # inside the bot's own bytes: the envelope still decodes, the checksum does not match
    newest.write_bytes(bytes(data))

    again = master(PROCFILE)
    assert restored(again, "blocker.log", 2)[1] == {"n": 2}
    again.wait_line(r"checkpoint .*000000000003\.ckpt fails its checksum, trying an older one")
    assert again.stop() == 0
