"""`[bus] persist`: retained values on real files, a round trip through a new store, coalesced writes, refusals."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path

import msgspec
import pytest
from msgspec import Raw

from supervisor.bus import frames as f
from supervisor.bus.retained import RetainedStore
from supervisor.config import procfile as config
from supervisor.control.retained_disk import RetainedDisk, file_name
from supervisor.core.errors import ConfigErrors
from supervisor.master.daemon import write_atomic

LOG = logging.getLogger("test.retained_disk")
BOT = ("feed", 1)


def store(per_bot_topics: int = 100) -> RetainedStore:
    return RetainedStore(1000, 1 << 20, per_bot_topics, 1 << 20)


def put(s: RetainedStore, topic: str, obj: object, sender: tuple[str, int] = BOT, host: str = "") -> None:
    assert s.put(sender, f.Msg(topic, Raw(msgspec.msgpack.encode(obj)), True), host) is None


def value(s: RetainedStore, topic: str) -> object:
    kept = s.get(topic)
    assert kept is not None, topic
    return msgspec.msgpack.decode(bytes(kept.msg.data))


class Counting:
    """write_atomic, counting the writes per file."""

    def __init__(self) -> None:
        self.writes: dict[str, int] = {}

    def __call__(self, path: Path, data: bytes) -> None:
        self.writes[path.name] = self.writes.get(path.name, 0) + 1
        write_atomic(path, data)


def run(root: Path, patterns: list[str], s: RetainedStore, work=None, write=write_atomic) -> int:
    """Restore `root` into `s`, do `work(s)` on the loop, close: what a master does from start to shutdown."""

    async def main() -> int:
        disk = RetainedDisk(root, patterns, s, write, LOG)
        restored = await disk.restore()
        if work is not None:
            work(s)
        await disk.close()
        return restored

    return asyncio.run(main())


def test_a_round_trip_keeps_matching_values_with_their_publisher_and_nothing_else(tmp_path: Path) -> None:
    def work(s: RetainedStore) -> None:
        put(s, "state.x", {"pos": 3})
        put(s, "state.deep.y", [1, 2])
        put(s, "state.gone", 1)
        put(s, "state.gone", None)  # a nil retained publish clears
        put(s, "prices.btc", 101.5)
        put(s, "state.remote", 7, host="other-host")

    assert run(tmp_path, ["state.>"], store(), work) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(file_name(t) for t in ("state.x", "state.deep.y"))
    again = store()
    assert run(tmp_path, ["state.>"], again) == 2
    assert (value(again, "state.x"), value(again, "state.deep.y")) == ({"pos": 3}, [1, 2])
    kept = again.get("state.x")
    assert kept is not None and (kept.bot, kept.instance, kept.host) == ("feed", 1, "")
    assert again.get("prices.btc") is None and again.get("state.gone") is None and again.get("state.remote") is None


def test_clearing_a_restored_value_removes_its_file(tmp_path: Path) -> None:
    run(tmp_path, ["state.*"], store(), lambda s: put(s, "state.x", 1))
    assert (tmp_path / file_name("state.x")).exists()
    run(tmp_path, ["state.*"], store(), lambda s: put(s, "state.x", None))
    assert not (tmp_path / file_name("state.x")).exists()
    assert run(tmp_path, ["state.*"], store()) == 0


def test_a_burst_is_one_write_of_the_last_value(tmp_path: Path) -> None:
    write = Counting()

    def burst(s: RetainedStore) -> None:
        for n in range(500):
            put(s, "state.x", n)

    run(tmp_path, ["state.x"], store(), burst, write)
    assert write.writes == {file_name("state.x"): 1}
    again = store()
    run(tmp_path, ["state.x"], again)
    assert value(again, "state.x") == 499


def test_writes_wait_for_the_interval_and_follow_the_latest_value(tmp_path: Path) -> None:
    """Published while the loop runs: the timer writes (no shutdown needed), then a later change is written again."""
    write = Counting()

    async def main() -> None:
        s = store()
        disk = RetainedDisk(tmp_path, ["state.>"], s, write, LOG, every=0.01)
        await disk.restore()
        path = tmp_path / file_name("state.x")
        put(s, "state.x", 1)
        assert not path.exists(), "nothing is written on the publish itself"
        while not path.exists():
            await asyncio.sleep(0.01)
        put(s, "state.x", 2)
        while write.writes.get(path.name, 0) < 2:
            await asyncio.sleep(0.01)
        await disk.close()

    asyncio.run(asyncio.wait_for(main(), 60))
    again = store()
    run(tmp_path, ["state.>"], again)
    assert value(again, "state.x") == 2


def test_the_disk_work_runs_off_the_loop(tmp_path: Path) -> None:
    """A write that waits for the loop to do something would never end if it ran on the loop itself."""
    started, loop_ran = threading.Event(), threading.Event()

    def slow(path: Path, data: bytes) -> None:
        started.set()
        assert loop_ran.wait(30), "the loop was blocked by the write"
        write_atomic(path, data)

    async def main() -> None:
        s = store()
        disk = RetainedDisk(tmp_path, ["state.>"], s, slow, LOG, every=0.01)
        await disk.restore()
        put(s, "state.x", 1)
        assert await asyncio.to_thread(started.wait, 30)
        loop_ran.set()  # the loop runs while the write is in its thread
        await disk.close()

    asyncio.run(asyncio.wait_for(main(), 60))
    assert (tmp_path / file_name("state.x")).exists()


def test_a_corrupt_file_is_refused_with_a_log_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    run(tmp_path, ["state.>"], store(), lambda s: (put(s, "state.a", "a"), put(s, "state.b", "b")))
    rotten = tmp_path / file_name("state.a")
    data = bytearray(rotten.read_bytes())
    data[-1] ^= 1
    rotten.write_bytes(bytes(data))
    (tmp_path / file_name("state.b")).rename(tmp_path / file_name("state.c"))  # a good envelope under another name
    again = store()
    with caplog.at_level(logging.WARNING, LOG.name):
        assert run(tmp_path, ["state.>"], again) == 0
    assert again.get("state.a") is None and again.get("state.b") is None and again.get("state.c") is None
    assert f"{file_name('state.a')} refused, not restored: fails its checksum" in caplog.text
    assert "holds topic 'state.b', which is not its name" in caplog.text


def test_a_topic_no_pattern_matches_any_more_is_dropped(tmp_path: Path) -> None:
    run(tmp_path, ["state.>", "prices.*"], store(), lambda s: (put(s, "state.x", 1), put(s, "prices.btc", 2)))
    again = store()
    assert run(tmp_path, ["state.>"], again) == 1
    assert again.get("prices.btc") is None and not (tmp_path / file_name("prices.btc")).exists()
    assert run(tmp_path, [], store()) == 0, "without [bus] persist the files left behind go"
    assert list(tmp_path.iterdir()) == []


def test_the_restored_set_obeys_the_retained_bounds(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    run(tmp_path, ["state.>"], store(), lambda s: (put(s, "state.a", 1), put(s, "state.b", 2)))
    small = store(per_bot_topics=1)
    with caplog.at_level(logging.WARNING, LOG.name):
        run(tmp_path, ["state.>"], small)
    assert len(small) == 1 and "not restored: feed:1 may keep 1 retained topics" in caplog.text
    assert len(list(tmp_path.iterdir())) == 1, "what the store refused is not kept on disk either"


@pytest.mark.parametrize(("pattern", "topic", "persisted"), [
    ("state.>", "state.x", True), ("state.>", "state", False), ("state.*", "state.x.y", False),
    ("*.pos", "bot.pos", True), ("state.x", "state.x", True), ("state.x", "state.y", False),
])
def test_patterns_follow_the_bus_grammar(tmp_path: Path, pattern: str, topic: str, persisted: bool) -> None:
    assert RetainedDisk(tmp_path, [pattern], store(), write_atomic, LOG).persists(topic) is persisted


def test_a_topic_that_looks_like_a_path_stays_inside_the_directory(tmp_path: Path) -> None:
    root = tmp_path / "retained"
    run(root, [">"], store(), lambda s: (put(s, "../../escape", 1), put(s, "/etc/passwd", 2)))
    assert [p.parent for p in tmp_path.rglob("*.ckpt")] == [root, root]


def test_bad_persist_patterns_name_their_index() -> None:
    assert config.loads(b'[bots.a]\ncmd = "a"\n', "p.toml").bus.persist == []
    with pytest.raises(ConfigErrors) as e:
        config.loads(b'[bus]\npersist = ["state.>", "a.>.b"]\n[bots.a]\ncmd = "a"\n', "p.toml")
    assert [x.key for x in e.value.errors] == ["bus.persist[1]"]
    with pytest.raises(ConfigErrors) as e:
        config.loads(b'[bus]\npersist = ["bad topic"]\n[bots.a]\ncmd = "a"\n', "p.toml")
    assert [x.key for x in e.value.errors] == ["bus.persist[0]"]
