"""What a bot asks the master itself over the bus: its checkpoints (docs/bus.md, "Checkpoints"), the fleet's
degradation level (docs/plugins.md, "Degradation levels") and the kill switch (docs/bus.md, "The kill switch").

`Client` gets these methods from `MasterCalls`; each is one request on a reserved `supctl.*` topic that the master
answers for the asking instance only (the broker stamps who asks, so no bot can read or write another's state).
"""

from __future__ import annotations

from typing import Any, Awaitable, Protocol

import msgspec

CHECKPOINT = "supctl.checkpoint.save"
RESTORE = "supctl.checkpoint.restore"
DEGRADATION = "supctl.fleet.degradation"
"""Published retained by the master on every level change, and answered as a request with the level now; a group's
level is on DEGRADATION.GROUP."""
KILL_SWITCH_SET = "supctl.kill_switch.set"
"""A request that activates or releases the kill switch (its state is published retained on supctl.kill_switch)."""


class Saved(msgspec.Struct):
    """The reply to a checkpoint: its number, 1, 2, ... per instance across restarts."""

    seq: int


class Restored(msgspec.Struct):
    """The reply to a restore; `data` holds the bot's own msgpack bytes when `found`."""

    found: bool = False
    seq: int = 0
    time: float = 0.0
    data: msgspec.Raw = msgspec.Raw(b"\xc0")
    skipped: int = 0
    """Newer checkpoints passed over because they were unreadable or failed their checksum."""


class FleetDegradation(msgspec.Struct, kw_only=True):
    """The fleet's degradation level (`[fleet.degradation]`), or one group's, and the counts behind it."""

    level: str = "normal"
    """normal, reduced, minimal or emergency."""
    healthy: int = 0
    total: int = 0
    share: float = 1.0
    since: float = 0.0
    """When this level began, seconds since the epoch."""
    group: str = ""
    """Empty for the whole fleet, else the `[fleet.degradation.groups.NAME]` this level is over."""
    groups: list[FleetDegradation] = []
    """The fleet's answer to `degradation()` (and in status, /health) carries each group's level here."""

    def describe(self) -> str:
        who = f"group {self.group}" if self.group else "fleet"
        return f"{who} degradation {self.level}: {self.healthy} of {self.total} instances healthy ({self.share:.0%})"


class KillSwitchSet(msgspec.Struct, forbid_unknown_fields=True):
    """The request on supctl.kill_switch.set: activating needs a reason (at most 500 characters)."""

    activate: bool
    reason: str = ""


class KillSwitchView(msgspec.Struct, kw_only=True):
    """The kill switch after a request: `stopping` names the bots it holds, which the master stops once it has
    answered (the asking bot among them if it is held too, so its answer arrives before its stop signal)."""

    active: bool
    reason: str
    by: str
    """"bus:BOT:K" for a bot's request; "cli", "http ADDRESS" otherwise."""
    since: float
    stopping: list[str] = []


class _Requester(Protocol):
    def request(self, topic: str, obj: Any, timeout: float = 5.0, type: Any = None) -> Awaitable[Any]: ...


class MasterCalls:
    async def checkpoint(self: _Requester, state: Any, timeout: float = 10.0) -> int:
        """Keep `state` (anything msgpack can hold) as this instance's newest checkpoint, on disk once this returns;
        its sequence number."""
        saved: Saved = await self.request(CHECKPOINT, state, timeout, type=Saved)
        return saved.seq

    async def restore(self: _Requester, type: Any = None, timeout: float = 10.0) -> Any:
        """The state of this instance's newest good checkpoint (decoded as `type` if given), or None when it has
        none: after a crash, a master restart or a reboot alike."""
        got: Restored = await self.request(RESTORE, None, timeout, type=Restored)
        if not got.found:
            return None
        return msgspec.msgpack.decode(got.data, type=type) if type is not None else msgspec.msgpack.decode(got.data)

    async def degradation(self: _Requester, timeout: float = 5.0, group: str | None = None) -> FleetDegradation:
        """The fleet's level now, with each group's in `groups`, or only `group`'s (subscribe to
        `supctl.fleet.degradation` or `supctl.fleet.degradation.GROUP` to hear each change); a BusError when the
        procfile has no `[fleet.degradation]` or no such group."""
        level: FleetDegradation = await self.request(DEGRADATION, group, timeout, type=FleetDegradation)
        return level

    async def kill_switch(self: _Requester, activate: bool, reason: str = "", timeout: float = 5.0) -> KillSwitchView:
        """Activate (with a reason) or release the kill switch, as `supctl kill-switch on|off` does, set by
        "bus:BOT:K". Needs the bot's `bus.publish` to allow supctl.kill_switch.set; releasing needs a `publish`
        list that names it (a bot with open permissions may only activate). A BusError when refused."""
        state: KillSwitchView = await self.request(KILL_SWITCH_SET, KillSwitchSet(activate, reason), timeout,
                                                   type=KillSwitchView)
        return state
