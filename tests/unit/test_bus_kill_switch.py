"""What the master answers on supctl.kill_switch.set before anything changes: who may ask, and a body it can read."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from supervisor.bus import frames as f
from supervisor.bus.state import KILL_SWITCH_SET, KillSwitchSet
from supervisor.control.bus_desk import MasterDesk
from supervisor.control.handlers import kill_switch_refusal
from supervisor.control.protocol import Error, KillSwitchReply, KillSwitchStatus
from supervisor.core.errors import BusError


def desk(calls: list[tuple[bool, str, str]]) -> MasterDesk:
    def change(active: bool, reason: str, by: str) -> KillSwitchReply | Error:
        """Handlers.change_kill_switch's checks, without a fleet to stop."""
        why = kill_switch_refusal(active, reason.strip())
        if why:
            return Error(message=why)
        calls.append((active, reason, by))
        return KillSwitchReply(state=KillSwitchStatus(active=active, reason=reason, by=by, since=1.0), stopped=["trader"])

    return MasterDesk(None, lambda bot: bot in ("risk", "opener"), lambda: None, change,  # type: ignore[arg-type]
                      lambda bot: bot == "risk")


def ask(d: MasterDesk, data: object, bot: str = "risk", host: str = "") -> object:
    raw = msgspec.Raw(msgspec.msgpack.encode(data))
    answer = asyncio.run(d.answer(f.Request(1, KILL_SWITCH_SET, raw, bot=bot, instance=2, host=host)))
    return msgspec.msgpack.decode(answer)


def test_a_bot_of_this_master_sets_it_and_is_named() -> None:
    calls: list[tuple[bool, str, str]] = []
    got = ask(desk(calls), KillSwitchSet(True, "drawdown"))
    assert got == {"active": True, "reason": "drawdown", "by": "bus:risk:2", "since": 1.0, "stopping": ["trader"]}
    assert ask(desk(calls), {"activate": False}) == {"active": False, "reason": "", "by": "bus:risk:2", "since": 1.0,
                                                      "stopping": ["trader"]}
    assert calls == [(True, "drawdown", "bus:risk:2"), (False, "", "bus:risk:2")]


@pytest.mark.parametrize(("data", "bot", "host", "why"), [
    ({"activate": False}, "opener", "", "may activate the kill switch, not release it"),
    ({"activate": True, "reason": "x"}, "supctl", "", "only a bot of this master sets the kill switch, not supctl:2"),
    ({"activate": True, "reason": "x"}, "risk", "other-host", "not risk:2 on other-host"),
    ({"activate": "yes"}, "risk", "", 'expected {"activate": true|false, "reason": "..."}'),
    ({"activate": True, "reason": "x", "extra": 1}, "risk", "", "expected {"),
    ("halt", "risk", "", "expected {"),
    ({"activate": True, "reason": " "}, "risk", "", "needs a reason"),
    ({"activate": True, "reason": "x" * 501}, "risk", "", "501 characters; at most 500"),
])
def test_refusals_change_nothing(data: object, bot: str, host: str, why: str) -> None:
    calls: list[tuple[bool, str, str]] = []
    with pytest.raises(BusError, match="^supctl.kill_switch.set: ") as e:
        ask(desk(calls), data, bot, host)
    assert why in str(e.value)
    assert calls == []
