"""`incident_log`: append one JSON line per incident to a file (blocking file I/O, so blocking = True)."""

from __future__ import annotations

import json
import time

import msgspec

from supervisor.plugin import Recovery, RecoveryContext


class IncidentLogOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    path: str


class IncidentLog(Recovery):
    name = "incident_log"
    Options = IncidentLogOptions
    blocking = True  # a plain def, run in a thread: a slow disk cannot stall the master

    def recover(self, ctx: RecoveryContext, failure: str) -> None:  # type: ignore[override]
        line = {"time": time.time(), "bot": ctx.bot, "instance": ctx.instance, "pid": ctx.pid, "failure": failure}
        with open(self.options.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")
