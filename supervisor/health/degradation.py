"""The fleet's degradation level from the share of healthy instances (`[fleet.degradation]`, docs/plugins.md), and
each group's over its own bots' instances (`[fleet.degradation.groups.NAME]`).

Recomputed on every transition and health change. An instance that has not finished its first start (never RUNNING,
never exited) or whose checks have not decided yet counts in neither the healthy nor the total, so a master that is
starting its fleet does not pass through "emergency". A RUNNING instance is healthy unless its checks fail or it is
DEGRADED; any other state after its first start (BACKOFF, FATAL, stopped) is unhealthy.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import msgspec

from ..bus.state import FleetDegradation
from ..config.fleet import DegradationConfig, Thresholds
from ..core.states import State
from ..engine.instance import Instance
from .target import HealthBoard

LEVELS = ("normal", "reduced", "minimal", "emergency")


def level_of(share: float, cfg: Thresholds) -> str:
    """The deepest level whose threshold the share is below."""
    if share < cfg.emergency:
        return "emergency"
    if share < cfg.minimal:
        return "minimal"
    if share < cfg.reduced:
        return "reduced"
    return "normal"


def _counts(inst: Instance, board: HealthBoard) -> bool | None:
    """True healthy, False unhealthy, None not decided yet."""
    if inst.state == State.RUNNING:
        checks = board.of(inst)
        state = checks.summary()[0] if checks is not None else "healthy"
        return None if state in ("starting", "unknown") else state == "healthy"
    if inst.last_exit is None and inst.state in (State.STOPPED, State.STARTING):
        return None
    return False


class Degradation:
    def __init__(self, cfg: DegradationConfig, instances: Callable[[], Iterable[Instance]], board: HealthBoard,
                 announce: Callable[[FleetDegradation, str], None]) -> None:
        self.cfg = cfg
        self._instances = instances
        self._board = board
        self._announce = announce
        self.state = FleetDegradation(since=time.time())
        self.groups = {name: FleetDegradation(since=self.state.since, group=name) for name in cfg.groups}
        self._members = {name: frozenset(g.bots) for name, g in cfg.groups.items()}

    def now(self) -> FleetDegradation:
        """The fleet's level with every group's in `groups`: what status, /health, /metrics and a bot asking see."""
        return msgspec.structs.replace(self.state, groups=list(self.groups.values()))

    def update(self) -> None:
        """Recount the fleet and each group; `announce(new, old_level)` for each whose level changes, once it is the
        state here."""
        votes = [(i.bot, v) for i in self._instances() if (v := _counts(i, self._board)) is not None]
        old = self.state
        self.state = _settle(old, [v for _, v in votes], self.cfg)
        changed = [(self.state, old.level)] if self.state is not old else []
        for name, group in self.cfg.groups.items():
            old = self.groups[name]
            new = self.groups[name] = _settle(old, [v for bot, v in votes if bot in self._members[name]], group)
            if new is not old:
                changed.append((new, old.level))
        for new, was in changed:
            self._announce(new, was)


def _settle(old: FleetDegradation, votes: list[bool], cfg: Thresholds) -> FleetDegradation:
    """The same record with new counts while the level holds, else a new one from now."""
    healthy, total = sum(votes), len(votes)
    share = healthy / total if total else 1.0
    level = level_of(share, cfg)
    if level == old.level:
        old.healthy, old.total, old.share = healthy, total, share
        return old
    return FleetDegradation(level=level, healthy=healthy, total=total, share=share, since=time.time(), group=old.group)
