"""Each instance's last N checkpoints in state_dir/checkpoints/BOT/K/, so a bot resumes after its own crash, a master
restart and a reboot (docs/bus.md, "Checkpoints").

A checkpoint is the bot's msgpack bytes, kept verbatim in an envelope with a sequence number, the time and a SHA-256
of the bytes; files are written whole or not at all (the master's `write_atomic`). A restore takes the newest file
whose checksum still matches and says in the log which newer ones it skipped, so a torn or rotten file costs one
step back, not the bot's state. `seal` and `unseal` are that envelope on its own: the bus's persisted retained values
(control/retained_disk.py) are kept in the same file format.
"""

from __future__ import annotations

import logging
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import msgspec

SUFFIX = ".ckpt"
_NAME = re.compile(r"^(\d{12})\.ckpt$")


class Envelope(msgspec.Struct, array_like=True):
    seq: int
    time: float
    sha256: str
    data: bytes


_ENC = msgspec.msgpack.Encoder()
_DEC = msgspec.msgpack.Decoder(Envelope)


def seal(seq: int, data: bytes) -> bytes:
    """`data` verbatim in an envelope with its number, the time and its SHA-256: one file's bytes."""
    import hashlib  # here: its OpenSSL mapping costs a master that never checkpoints ~0.5 MiB

    return _ENC.encode(Envelope(seq, time.time(), hashlib.sha256(data).hexdigest(), data))


def unseal(raw: bytes) -> Envelope:
    """The envelope of one file's bytes; ValueError (saying why) when it does not decode or fails its checksum."""
    import hashlib

    try:
        env = _DEC.decode(raw)
    except msgspec.DecodeError as e:
        raise ValueError(f"unreadable: {e}") from None
    if hashlib.sha256(env.data).hexdigest() != env.sha256:
        raise ValueError("fails its checksum")
    return env


class CheckpointStore:
    def __init__(self, root: Path, keep: int, write: Callable[[Path, bytes], None], log: logging.Logger) -> None:
        self.root = root
        self.keep = keep
        self._write = write
        self._log = log

    def _dir(self, bot: str, instance: int) -> Path:
        return self.root / bot / str(instance)

    def _seqs(self, where: Path) -> list[int]:
        """Sequence numbers on disk, newest first (temp files and strangers ignored)."""
        try:
            names = os.listdir(where)
        except FileNotFoundError:
            return []
        return sorted((int(m.group(1)) for n in names if (m := _NAME.match(n))), reverse=True)

    def save(self, bot: str, instance: int, data: bytes) -> int:
        """Write one checkpoint after the newest, then prune beyond `keep`; its number. Blocking (run it off the loop)."""
        where = self._dir(bot, instance)
        where.mkdir(parents=True, exist_ok=True, mode=0o700)
        seqs = self._seqs(where)
        seq = (seqs[0] if seqs else 0) + 1
        self._write(where / f"{seq:012d}{SUFFIX}", seal(seq, data))
        seqs.insert(0, seq)
        for old in seqs[self.keep:]:
            (where / f"{old:012d}{SUFFIX}").unlink(missing_ok=True)
        return seq

    def load(self, bot: str, instance: int) -> tuple[Envelope | None, int]:
        """The newest checkpoint whose checksum matches (None: no good one) and how many newer ones were skipped."""
        where = self._dir(bot, instance)
        skipped = 0
        for seq in self._seqs(where):
            path = where / f"{seq:012d}{SUFFIX}"
            try:
                env = unseal(path.read_bytes())
                if env.seq != seq:
                    raise ValueError(f"holds number {env.seq}")
            except (OSError, ValueError) as e:
                self._log.warning("checkpoint %s %s, trying an older one", path, e)
                skipped += 1
                continue
            return env, skipped
        return None, skipped
