"""The control protocol: the msgspec frames that travel over state_dir/control.sock.

Imports stay light (msgspec and the stdlib) because every `supctl` verb loads this module.
"""

from typing import Any, Literal

import msgspec

from ..core.frames import HEADER, pack  # noqa: F401 - HEADER: tests write raw frames with it

PROTOCOL_VERSION = 1
MAX_FRAME = 4 * 1024 * 1024
"""Largest reply the client accepts (a status table of a big fleet)."""
MAX_REQUEST = 64 * 1024
"""Largest request the master accepts: requests name a bot or a task, so anything bigger is hostile."""


class Frame(msgspec.Struct, tag_field="op", tag=str.lower, forbid_unknown_fields=True, kw_only=True):
    """Every request and response; the `op` field tells them apart."""


class Hello(Frame):
    version: int
    client: str = "supctl"


class StatusRequest(Frame):
    target: str | None = None


class Action(Frame):
    verb: Literal["start", "stop", "restart"]
    target: str


class SignalRequest(Frame):
    signal: str
    target: str


class Reload(Frame):
    pass


class TasksRequest(Frame):
    pass


class HealthRequest(Frame):
    target: str


class RunTask(Frame):
    name: str


class Shutdown(Frame):
    pass


class KillSwitchRequest(Frame):
    """activate None only asks; True needs a reason; `by` says who (cli, http and its peer address)."""

    activate: bool | None = None
    reason: str = ""
    by: str = "cli"


class StopPlanRequest(Frame):
    """What a stop, restart or shutdown of `target` will wait for (None: every instance)."""

    target: str | None = None


class Flush(Frame):
    """Empty the logs of `target` (None: every bot) and drop their rotated backups."""

    target: str | None = None


class DescribeRequest(Frame):
    target: str


class SummaryRequest(Frame):
    """`supctl ls`: a few counts, cheaper than a status table (no process sampling)."""


class BusTokenRequest(Frame):
    """`supctl bus ...` asks for a token of its own: the master's own never leaves the master."""


Request = (Hello | StatusRequest | Action | SignalRequest | Reload | Shutdown | TasksRequest | RunTask | HealthRequest
           | KillSwitchRequest | SummaryRequest | BusTokenRequest | StopPlanRequest | Flush | DescribeRequest)


class Welcome(Frame):
    version: int
    master_pid: int
    procfile: str


class Error(Frame):
    message: str


class MasterInfo(msgspec.Struct, kw_only=True):
    """Who answers: the master's version, pid, start time and files."""

    version: str
    pid: int
    started_at: float
    procfile: str
    state_dir: str


class LastExit(msgspec.Struct, kw_only=True):
    """How the previous process of an instance ended."""

    code: int | None
    """Exit code; null when a signal ended it or it never started."""
    signal: str | None
    """e.g. "SIGKILL"; null when it exited by itself."""
    after_s: float
    """How long it ran."""
    at: float
    """When it ended (epoch seconds)."""
    reason: str = ""
    """"SIGKILL after stop_timeout", "exited before start_grace", a spawn error, a health restart..."""


class HealthState(msgspec.Struct, kw_only=True):
    state: Literal["healthy", "unhealthy", "starting", "unknown", "degraded", "waiting"]
    """"waiting": not started because of a dependency (the reason says which)."""
    reason: str
    since: float | None = None
    """When it entered this state (epoch seconds)."""


class InstanceStatus(msgspec.Struct, kw_only=True):
    bot: str
    instance: int
    state: str
    pid: int | None = None
    uptime: float | None = None
    restarts: int = 0
    last_exit: LastExit | None = None
    cpu: float | None = None
    rss: int | None = None
    health: HealthState | None = None
    bus: str | None = None
    next_try_at: float | None = None
    """In BACKOFF: when the next start is due (epoch seconds)."""
    log_lost: int = 0
    """Bytes of output that could not be written to the instance's log (deleted or unwritable logs/, full disk)."""


class KillSwitchStatus(msgspec.Struct, kw_only=True):
    active: bool
    reason: str
    by: str
    since: float


class BridgeStatus(msgspec.Struct, kw_only=True):
    """The master's NATS bridge ([bus.nats]), as `supctl status` shows it."""

    state: str
    """connecting, connected, disconnected (retrying) or refused (credentials; retrying)."""
    error: str = ""
    since: float = 0.0
    fleet: str = ""
    host: str = ""
    server: str = ""
    sent: int = 0
    received: int = 0
    buffered: int = 0
    dropped: int = 0
    invalid: int = 0
    remote_hosts: list[str] = []
    retained: str = ""
    """Where retained values of exported topics are kept: the JetStream bucket, or why they stay local."""


class BusTokenReply(Frame):
    """A token good for one bus connection, as supctl:N (the operator; the master itself is supctl:0)."""

    token: str
    path: str


class FdUsage(msgspec.Struct, kw_only=True):
    """The master's file descriptors: open now, its limits, and about how many the fleet needs."""

    open: int
    soft: int
    hard: int
    needed: int


class DegradationStatus(msgspec.Struct, kw_only=True):
    """The fleet's degradation level (`[fleet.degradation]`); the same fields as on supctl.fleet.degradation."""

    level: str
    healthy: int
    total: int
    share: float
    since: float
    group: str = ""
    """Empty for the fleet; a group's name in `groups`."""
    groups: "list[DegradationStatus]" = []
    """Each `[fleet.degradation.groups.NAME]`'s level over its own bots' instances."""


class StatusReply(Frame):
    master: MasterInfo
    instances: list[InstanceStatus]
    degradation: DegradationStatus | None = None
    kill_switch: KillSwitchStatus | None = None
    bridge: BridgeStatus | None = None
    fds: FdUsage | None = None


class KillSwitchReply(Frame):
    state: KillSwitchStatus
    stopped: list[str] = []


class ActionReply(Frame):
    message: str
    ok: bool = True
    affected: list[str] = []
    killed: list[str] = []
    """Instances that did not stop within stop_timeout and got SIGKILL."""


class StopWait(msgspec.Struct, kw_only=True):
    """What stopping one running instance means: its stop signal, then SIGKILL after the timeout."""

    name: str
    signal: str
    timeout_s: float


class ReloadReply(Frame):
    added: list[str] = []
    removed: list[str] = []
    restarted: list[str] = []
    kept: list[str] = []
    needs_restart: list[str] = []


class TaskRunRow(msgspec.Struct, kw_only=True):
    """One finished run of a scheduled task, as the wire carries it (times as ISO-8601 strings)."""

    started: str
    duration: float
    outcome: str
    exit_code: int | None = None
    error: str | None = None


class TaskRow(msgspec.Struct, kw_only=True):
    name: str
    schedule: str
    next_run: str | None
    running: int
    skipped: int
    runs: list[TaskRunRow]


class TasksReply(Frame):
    tasks: list[TaskRow]


class RunReply(Frame):
    name: str
    run: TaskRunRow


class HealthEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One check result or the recovery it triggered: kept by the health runner, shown by `supctl health`."""

    kind: Literal["check", "recovery"]
    index: int
    name: str
    ok: bool
    reason: str
    time: float
    duration: float
    skipped: bool = False
    """A recovery that chose to do nothing (circuit open)."""


class HealthRow(msgspec.Struct, kw_only=True):
    bot: str
    instance: int
    summary: str
    records: list[HealthEntry]


class HealthReply(Frame):
    instances: list[HealthRow]


class Budget(msgspec.Struct, kw_only=True):
    """One instance's restart budget: `used` of `count` restarts inside the sliding `window`."""

    instance: int
    used: int
    left: int
    count: int
    window: str
    next_backoff_s: float
    """The wait before the next restart if the instance exited now (before jitter; back to `backoff.initial` after a
    run of at least `backoff.max`)."""


class BotDescription(msgspec.Struct, kw_only=True):
    """`supctl describe BOT`: the resolved configuration ([defaults] merged), with environment values of keys that
    look secret masked, and the live state of each instance."""

    bot: str
    config: dict[str, Any]
    argv: list[str]
    cwd: str
    env: dict[str, str]
    logs: list[str]
    budgets: list[Budget]
    depends_on: list[str]
    instances: list[InstanceStatus]
    health: list[HealthRow]


class DescribeReply(Frame):
    description: BotDescription


class StopPlan(Frame):
    waits: list[StopWait]


class Summary(Frame):
    master: MasterInfo
    bots: int
    instances: int
    running: int
    fatal: int
    unhealthy: int
    """Instances whose health is unhealthy or DEGRADED."""
    kill_switch: KillSwitchStatus | None = None
    """Only while it is active."""
    nats: str | None = None
    """The NATS bridge's state ([bus.nats]), None without one."""


Response = (Welcome | Error | StatusReply | ActionReply | ReloadReply | TasksReply | RunReply | HealthReply
            | KillSwitchReply | Summary | BusTokenReply | StopPlan | DescribeReply)

_encoder = msgspec.msgpack.Encoder()
response_decoder = msgspec.msgpack.Decoder(Response)


def status_json(reply: StatusReply) -> object:
    """What `supctl status --json` prints and GET /status serves: one shape, made in one place."""
    from .views import status_view

    return status_view(reply)


def encode(frame: Frame) -> bytearray:
    return pack(_encoder, frame)
