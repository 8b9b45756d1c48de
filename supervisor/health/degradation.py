"""The fleet's degradation level from the share of healthy instances (`[fleet.degradation]`, docs/plugins.md).

Recomputed on every transition and health change. An instance that has not finished its first start (never RUNNING,
never exited) or whose checks have not decided yet counts in neither the healthy nor the total, so a master that is
starting its fleet does not pass through "emergency". A RUNNING instance is healthy unless its checks fail or it is
DEGRADED; any other state after its first start (BACKOFF, FATAL, stopped) is unhealthy.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable


from ..bus.state import FleetDegradation
from ..config.fleet import DegradationConfig
from ..core.states import State
from ..engine.instance import Instance
from .target import HealthBoard

LEVELS = ("normal", "reduced", "minimal", "emergency")


def level_of(share: float, cfg: DegradationConfig) -> str:
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

    def update(self) -> None:
        """Recount; `announce(new, old_level)` when the level changes."""
        votes = [v for v in (_counts(i, self._board) for i in self._instances()) if v is not None]
        healthy, total = sum(votes), len(votes)
        share = healthy / total if total else 1.0
        level = level_of(share, self.cfg)
        old = self.state
        if level == old.level:
            old.healthy, old.total, old.share = healthy, total, share
            return
        self.state = FleetDegradation(level=level, healthy=healthy, total=total, share=share, since=time.time())
        self._announce(self.state, old.level)
