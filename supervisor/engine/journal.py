"""logs/events.jsonl: every state transition and every process event, one JSON object a line, in the order they
happened, so scripts (and the integration tests) follow the fleet without parsing supervisor.log."""

from __future__ import annotations

from pathlib import Path

import msgspec

from ..config.common import LogConfig
from ..output.rotating import RotatingLog
from ..plugin import ProcessEvent
from .instance import Transition


class JournalLine(msgspec.Struct, omit_defaults=True):
    """Exactly one of the two is set."""

    transition: Transition | None = None
    event: ProcessEvent | None = None


class Journal:
    """Rotated like the master's log; written synchronously (a few microseconds a line), so it is never behind."""

    def __init__(self, path: Path, cfg: LogConfig) -> None:
        self._log = RotatingLog(path, cfg.max_size, cfg.backups)
        self._encoder = msgspec.json.Encoder()

    def transition(self, t: Transition) -> None:
        self._write(JournalLine(transition=t))

    def event(self, event: ProcessEvent) -> None:
        self._write(JournalLine(event=event))

    def _write(self, line: JournalLine) -> None:
        self._log.write_lines(self._encoder.encode(line), b"\n")

    def close(self) -> None:
        self._log.close()
