"""The checkpoint store on real files: numbering across store objects, pruning, checksum and torn-file fallback."""

from __future__ import annotations

import logging
from pathlib import Path

import msgspec
import pytest

from supervisor.config import procfile as config
from supervisor.core.errors import ConfigErrors
from supervisor.engine.checkpoints import CheckpointStore
from supervisor.master.daemon import write_atomic

LOG = logging.getLogger("test.checkpoints")


def store(root: Path, keep: int = 3) -> CheckpointStore:
    return CheckpointStore(root, keep, write_atomic, LOG)


def test_numbers_continue_in_a_new_store_and_the_oldest_are_pruned(tmp_path: Path) -> None:
    assert store(tmp_path).load("a", 0) == (None, 0)
    for n in range(1, 5):
        assert store(tmp_path).save("a", 0, msgspec.msgpack.encode(n)) == n
    assert sorted(p.name for p in (tmp_path / "a" / "0").iterdir()) == [f"00000000000{n}.ckpt" for n in (2, 3, 4)]
    env, skipped = store(tmp_path).load("a", 0)
    assert env is not None and (env.seq, msgspec.msgpack.decode(env.data), skipped) == (4, 4, 0)
    assert store(tmp_path).load("a", 1) == (None, 0), "another instance has its own"


def test_a_torn_and_a_rotten_file_fall_back_to_the_last_good_one(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    s = store(tmp_path, keep=5)
    for n in range(1, 4):
        s.save("a", 0, msgspec.msgpack.encode({"n": n}))
    where = tmp_path / "a" / "0"
    (where / "000000000003.ckpt").write_bytes((where / "000000000003.ckpt").read_bytes()[:10])  # torn
    rotten = bytearray((where / "000000000002.ckpt").read_bytes())
    rotten[-1] ^= 1
    (where / "000000000002.ckpt").write_bytes(bytes(rotten))
    (where / ".000000000004.ckpt.abc.tmp").write_bytes(b"half")  # a write that never finished
    env, skipped = s.load("a", 0)
    assert env is not None and msgspec.msgpack.decode(env.data) == {"n": 1} and skipped == 2
    assert "000000000003.ckpt unreadable" in caplog.text and "000000000002.ckpt fails its checksum" in caplog.text
    assert s.save("a", 0, b"\x01") == 4, "numbering goes on after the newest file, good or not"


def test_bus_checkpoints_has_a_range() -> None:
    assert config.loads(b'[bots.a]\ncmd = "a"\n', "p.toml").bus.checkpoints == 3
    with pytest.raises(ConfigErrors) as e:
        config.loads(b'[bus]\ncheckpoints = 0\n[bots.a]\ncmd = "a"\n', "p.toml")
    assert [x.key for x in e.value.errors] == ["bus.checkpoints"]
