"""The kill switch's state: read back at start, an unreadable file holds, only kill_switch = true bots are held."""

from __future__ import annotations

import asyncio
import logging

import msgspec

from supervisor.config.procfile import BotConfig
from supervisor.engine.fleet import Fleet
from supervisor.engine.kill_switch import KillSwitch, KillSwitchState


def make(path, saved: list[bytes], heard: list[KillSwitchState]) -> KillSwitch:
    return KillSwitch(path, saved.append, heard.append)


def test_missing_file_is_off_and_a_set_is_saved_then_announced(tmp_path) -> None:
    saved: list[bytes] = []
    heard: list[KillSwitchState] = []
    ks = make(tmp_path / "kill_switch.json", saved, heard)
    assert ks.state.active is False and ks.holds(BotConfig(cmd="true")) is None
    fleet = Fleet(health=None, logger=logging.getLogger("test"))  # type: ignore[arg-type]
    stopped = asyncio.run(ks.set(True, "halt", "cli", fleet))
    assert stopped == [] and heard == [ks.state]
    assert msgspec.json.decode(saved[-1], type=KillSwitchState) == ks.state
    held = ks.holds(BotConfig(cmd="true"))
    assert held is not None and "set by cli: halt" in held
    assert ks.holds(BotConfig(cmd="true", kill_switch=False)) is None


def test_state_survives_and_an_unreadable_file_holds(tmp_path) -> None:
    path = tmp_path / "kill_switch.json"
    path.write_bytes(msgspec.json.encode(KillSwitchState(active=True, reason="r", by="http 10.0.0.1", since=5.0)))
    assert make(path, [], []).state.reason == "r"
    path.write_bytes(b"{torn")
    state = make(path, [], []).state
    assert state.active is True and state.by == "master" and "unreadable" in state.reason
