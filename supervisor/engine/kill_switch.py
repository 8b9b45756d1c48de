"""The kill switch: while active, bots with kill_switch = true are stopped and nothing starts them again.

Its state lives in one file in state_dir, written atomically and read back at master start, so a crash or a
reboot never undoes it. A file that cannot be read counts as an active switch: failing open would be the
crash undoing it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import msgspec

from ..config.procfile import BotConfig
from .fleet import Fleet

TOPIC = "supctl.kill_switch"


class KillSwitchState(msgspec.Struct, frozen=True, kw_only=True):
    active: bool = False
    reason: str = ""
    by: str = ""
    """Who set it: 'cli', 'http 127.0.0.1', 'bus:risk:0' (a bot's request), 'master' (an unreadable file)."""
    since: float = 0.0

    def describe(self) -> str:
        when = datetime.fromtimestamp(self.since, timezone.utc).isoformat(timespec="seconds")
        return f"kill switch active since {when} (set by {self.by}: {self.reason})"


def load(path: Path) -> KillSwitchState:
    try:
        return msgspec.json.decode(path.read_bytes(), type=KillSwitchState)
    except FileNotFoundError:
        return KillSwitchState()
    except (OSError, msgspec.DecodeError) as e:
        return KillSwitchState(active=True, by="master", since=time.time(), reason=f"{path} is unreadable ({e}); "
                               "release the kill switch once you have checked it")


class KillSwitch:
    """The state, the gate every start asks, and the one sequence that changes it: save, announce, then stop."""

    def __init__(self, path: Path, save: Callable[[bytes], None], announce: Callable[[KillSwitchState], None]) -> None:
        self.path = path
        self.state = load(path)
        self._save, self._announce = save, announce

    def holds(self, config: BotConfig) -> str | None:
        """Why this bot may not start now, or None."""
        return self.state.describe() if self.state.active and config.kill_switch else None

    def change(self, active: bool, reason: str, by: str, fleet: Fleet) -> list[str]:
        """Persist first (a crash right after still holds), then announce before anything stops (a trading bot gets
        the bus message and flattens in its stop grace); the bots the switch now holds, for the caller to stop."""
        self.state = KillSwitchState(active=active, reason=reason, by=by, since=time.time())
        self._save(msgspec.json.encode(self.state))
        self._announce(self.state)
        return [name for name, bot in fleet.bots.items() if bot.config.kill_switch] if active else []

    async def set(self, active: bool, reason: str, by: str, fleet: Fleet) -> list[str]:
        """`change`, then stop every bot the switch holds; returns their names."""
        held = self.change(active, reason, by, fleet)
        if held:
            await fleet.stop_bots(held, f"kill switch: {reason}")
        return held
