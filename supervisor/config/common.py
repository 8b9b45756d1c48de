"""The records bots and tasks share, apart from config.py so that task_config.py can use them too."""

from __future__ import annotations

import shlex

import msgspec

from ..core.units import parse_size


class Struct(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Base: unknown keys are errors and a loaded config never changes under us."""


class LogConfig(Struct):
    max_size: str = "50MB"
    backups: int = 5
    timestamps: bool = False

    @property
    def max_bytes(self) -> int:
        return parse_size(self.max_size)


class Command(Struct):
    """What bots and scheduled tasks share: a command, where and with what environment it runs."""

    cmd: list[str] | str
    shell: bool = False
    cwd: str | None = None
    env: dict[str, str] = {}

    def argv(self) -> list[str]:
        if self.shell:
            return ["/bin/sh", "-c", self.cmd if isinstance(self.cmd, str) else shlex.join(self.cmd)]
        return shlex.split(self.cmd) if isinstance(self.cmd, str) else list(self.cmd)
