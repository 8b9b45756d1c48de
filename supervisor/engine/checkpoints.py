"""Each instance's last N checkpoints in state_dir/checkpoints/BOT/K/, so a bot resumes after its own crash, a master
restart and a reboot (docs/bus.md, "Checkpoints").

A checkpoint is the bot's msgpack bytes, kept verbatim in an envelope with a sequence number, the time and a SHA-256
of the bytes; files are written whole or not at all (the master's `write_atomic`). A restore takes the newest file
whose checksum still matches and says in the log which newer ones it skipped, so a torn or rotten file costs one
step back, not the bot's state.
"""

from __future__ import annotations

import hashlib
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


class CheckpointStore:
    def __init__(self, root: Path, keep: int, write: Callable[[Path, bytes], None], log: logging.Logger) -> None:
        self.root = root
        self.keep = keep
        self._write = write
        self._log = log
        self._enc = msgspec.msgpack.Encoder()
        self._dec = msgspec.msgpack.Decoder(Envelope)

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
        env = Envelope(seq, time.time(), hashlib.sha256(data).hexdigest(), data)
        self._write(where / f"{seq:012d}{SUFFIX}", self._enc.encode(env))
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
                env = self._dec.decode(path.read_bytes())
            except (OSError, msgspec.DecodeError) as e:
                self._log.warning("checkpoint %s unreadable, trying an older one: %s", path, e)
                skipped += 1
                continue
            if hashlib.sha256(env.data).hexdigest() != env.sha256 or env.seq != seq:
                self._log.warning("checkpoint %s fails its checksum, trying an older one", path)
                skipped += 1
                continue
            return env, skipped
        return None, skipped
