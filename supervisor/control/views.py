"""What `--json` prints: plain msgspec Structs (no wire tags), the source of the JSON Schemas in docs/json.md.

Imports stay light (msgspec and the stdlib): every `supctl` verb with --json loads this module.
"""

from __future__ import annotations

from typing import Literal

import msgspec


class MasterRow(msgspec.Struct, kw_only=True):
    """One master in `supctl ls --json`; the counts are null when it does not answer."""

    procfile: str
    state: Literal["running", "not answering"]
    pid: int
    state_dir: str
    version: str
    uptime_s: float | None = None
    bots: int | None = None
    instances: int | None = None
    running: int | None = None
    fatal: int | None = None
    unhealthy: int | None = None
    kill_switch: str | None = None
    """'reason (by)' while the master's kill switch is active."""
    nats: str | None = None
    """The NATS bridge's state when the master has [bus.nats]."""
