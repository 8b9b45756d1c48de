"""Process transitions as the events hooks and the bus hear about: started, exited, backoff, fatal, stopped."""

from __future__ import annotations

from ..plugin import ProcessEvent
from .instance import Instance, Transition

_KIND = {"RUNNING": "started", "BACKOFF": "backoff", "FATAL": "fatal", "STOPPED": "stopped"}


def events_for(t: Transition, inst: Instance) -> list[ProcessEvent]:
    """An unexpected or final exit is `exited` (with its code) first, then what the master does about it."""
    out: list[ProcessEvent] = []
    if t.old in ("STARTING", "RUNNING", "STOPPING") and t.new in ("BACKOFF", "EXITED", "FATAL") and inst.last_exit is not None:
        out.append(ProcessEvent(kind="exited", bot=t.bot, instance=t.instance, pid=t.pid, time=t.at, reason=t.reason,
                                exit_code=inst.last_exit.code))
    kind = _KIND.get(t.new)
    if kind is not None:
        out.append(ProcessEvent(kind=kind, bot=t.bot, instance=t.instance, pid=t.pid, time=t.at, reason=t.reason))  # type: ignore[arg-type]
    return out
