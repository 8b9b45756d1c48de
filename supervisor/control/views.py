"""What `--json` prints: plain msgspec Structs (no wire tags), the source of the JSON Schemas in docs/json.md.

Imports stay light (msgspec and the stdlib): every `supctl` verb with --json loads this module.
Renaming or removing a field here changes what scripts read: tests/unit/test_json_schema.py fails until
docs/json-schema.json is regenerated (`python -m supervisor.control.views > docs/json-schema.json`).
"""

from __future__ import annotations

from typing import Literal

import msgspec

from .protocol import (
    ActionReply,
    BotDescription,
    BridgeStatus,
    DegradationStatus,
    Error,
    FdUsage,
    HealthRow,
    InstanceStatus,
    KillSwitchStatus,
    MasterInfo,
    ReloadReply,
    StatusReply,
    TaskRow,
    TaskRunRow,
)


class StatusView(msgspec.Struct, kw_only=True):
    """`supctl status --json` and GET /status."""

    version: str
    """The master's supctl version."""
    master: MasterInfo
    instances: list[InstanceStatus]
    kill_switch: KillSwitchStatus | None = None
    bridge: BridgeStatus | None = None
    degradation: DegradationStatus | None = None
    fds: FdUsage | None = None


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


class ActionView(msgspec.Struct, kw_only=True):
    """`start`, `stop`, `restart`, `signal --json`: ok is false when an instance did not reach the asked state."""

    ok: bool
    message: str
    affected: list[str]


class ReloadView(msgspec.Struct, kw_only=True):
    added: list[str]
    removed: list[str]
    restarted: list[str]
    kept: list[str]
    needs_restart: list[str]
    """[supervisor] keys that changed and take full effect only when the master restarts."""


class LogLine(msgspec.Struct, kw_only=True):
    """`supctl logs --json`: one object per line of output."""

    bot: str
    """The bot, task or "supervisor" (the master's own log)."""
    instance: int | None
    stream: Literal["stdout", "stderr", "supervisor"]
    line: str


class ConfigProblem(msgspec.Struct, kw_only=True):
    file: str
    """The procfile as it was named."""
    key: str
    """Dotted key (`bots.trader.backoff.max`); empty for the file as a whole (a TOML syntax error)."""
    message: str
    line: int | None = None
    col: int | None = None


class ValidateView(msgspec.Struct, kw_only=True):
    """`supctl validate --json`: every problem at once; bots and instances are null unless ok."""

    ok: bool
    file: str
    errors: list[ConfigProblem]
    bots: int | None = None
    instances: int | None = None


class FleetHostView(msgspec.Struct, kw_only=True):
    """One master of a NATS fleet: `supctl fleet status --json` prints a list of these, `fleet start|stop|restart
    --json` one; `error` is set (and status/action null) when that master could not answer."""

    host: str
    procfile: str
    version: str
    pid: int
    status: StatusView | None = None
    action: ActionView | None = None
    error: str = ""


class ErrorView(msgspec.Struct, kw_only=True):
    """Any verb with --json that fails prints this on stderr and exits non-zero."""

    error: str
    exit_code: int


def status_view(reply: StatusReply) -> StatusView:
    return StatusView(version=reply.master.version, master=reply.master, instances=reply.instances,
                      kill_switch=reply.kill_switch, bridge=reply.bridge, degradation=reply.degradation, fds=reply.fds)


def action_view(reply: ActionReply) -> ActionView:
    return ActionView(ok=reply.ok, message=reply.message, affected=reply.affected)


def fleet_host_view(host: str, procfile: str, version: str, pid: int, reply: StatusReply | ActionReply | Error | None,
                    error: str) -> FleetHostView:
    view = FleetHostView(host=host, procfile=procfile, version=version, pid=pid, error=error)
    if isinstance(reply, StatusReply):
        view.status = status_view(reply)
    elif isinstance(reply, ActionReply):
        view.action = action_view(reply)
    elif isinstance(reply, Error):
        view.error = reply.message
    return view


def reload_view(reply: ReloadReply) -> ReloadView:
    return ReloadView(added=reply.added, removed=reply.removed, restarted=reply.restarted, kept=reply.kept,
                      needs_restart=reply.needs_restart)


VERBS: dict[str, object] = {
    "status": StatusView,
    "status --tasks": list[TaskRow],
    "ls": list[MasterRow],
    "start, stop, restart, signal": ActionView,
    "reload": ReloadView,
    "run": TaskRunRow,
    "health": list[HealthRow],
    "describe": BotDescription,
    "fleet status": list[FleetHostView],
    "fleet start, stop, restart": FleetHostView,
    "kill-switch": KillSwitchStatus,
    "logs (one object per line)": LogLine,
    "validate": ValidateView,
    "errors (on stderr)": ErrorView,
}
"""Every --json output, by verb: the table of docs/json.md and the schema in docs/json-schema.json."""


def schema() -> dict[str, object]:
    """One JSON Schema document: a `$defs` entry per Struct and, under `verbs`, what each verb prints."""
    refs, defs = msgspec.json.schema_components(list(VERBS.values()), ref_template="#/$defs/{name}")
    return {"$defs": defs,
            "verbs": dict(zip(VERBS, refs))}


if __name__ == "__main__":
    import sys

    sys.stdout.write(msgspec.json.format(msgspec.json.encode(schema()), indent=2).decode() + "\n")
