"""The records bots and tasks share, apart from procfile.py so that tasks.py can use them too."""

from __future__ import annotations

import msgspec

from ..core.commands import split_argv
from ..core.units import Size


class Struct(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """Base: unknown keys are errors and a loaded config never changes under us."""


class LogConfig(Struct):
    max_size: Size = Size("50MB")
    backups: int = 5
    timestamps: bool = False


class Command(Struct):
    """What bots and scheduled tasks share: a command, where and with what environment it runs."""

    cmd: list[str] | str
    shell: bool = False
    cwd: str | None = None
    env: dict[str, str] = {}

    def argv(self) -> list[str]:
        if self.shell:
            if isinstance(self.cmd, str):
                return ["/bin/sh", "-c", self.cmd]
            import shlex

            return ["/bin/sh", "-c", shlex.join(self.cmd)]
        return split_argv(self.cmd)
