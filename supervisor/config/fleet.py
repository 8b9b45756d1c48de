"""`[fleet.degradation]`: the share of healthy instances below which the fleet, or a group of its bots, runs reduced,
minimal or emergency."""

from __future__ import annotations

import re

from ..core.errors import ConfigError
from .common import Struct
from .tables import did_you_mean

_GROUP = re.compile(r"^[A-Za-z0-9_-]+$")
"""A group's name is one token of its topic, supctl.fleet.degradation.NAME."""


class Thresholds(Struct):
    reduced: float = 0.7
    minimal: float = 0.4
    emergency: float = 0.2


class DegradationGroup(Thresholds):
    """`[fleet.degradation.groups.NAME]`: a level of its own over these bots' instances."""

    bots: list[str] = []


class DegradationConfig(Thresholds):
    groups: dict[str, DegradationGroup] = {}


class FleetConfig(Struct):
    degradation: DegradationConfig | None = None
    """Without it no level is computed or published."""


def check_fleet(file: str, fleet: FleetConfig, bots: list[str]) -> list[ConfigError]:
    """Thresholds are shares in order; a group has a topic-safe name and names only bots of this procfile."""
    cfg = fleet.degradation
    if cfg is None:
        return []
    errors = _check_thresholds(file, "fleet.degradation", cfg)
    for name, group in cfg.groups.items():
        key = f"fleet.degradation.groups.{name}"
        if not _GROUP.match(name):
            errors.append(ConfigError(file, key, "group names use letters, digits, '_' and '-' only (a topic token)"))
        errors += _check_thresholds(file, key, group)
        if not group.bots:
            errors.append(ConfigError(file, f"{key}.bots", "expected the names of the bots in this group, found none"))
        for i, bot in enumerate(group.bots):
            if bot not in bots:
                errors.append(ConfigError(file, f"{key}.bots[{i}]", f"unknown bot {bot!r}{did_you_mean(bot, bots)}"))
    return errors


def _check_thresholds(file: str, key: str, cfg: Thresholds) -> list[ConfigError]:
    errors = [ConfigError(file, f"{key}.{k}", f"expected a share from 0 to 1, found {v:g}")
              for k, v in (("reduced", cfg.reduced), ("minimal", cfg.minimal), ("emergency", cfg.emergency))
              if not 0 <= v <= 1]
    if not errors and not cfg.reduced >= cfg.minimal >= cfg.emergency:
        errors.append(ConfigError(file, key, f"expected reduced >= minimal >= emergency, found "
                                  f"{cfg.reduced:g}, {cfg.minimal:g}, {cfg.emergency:g}"))
    return errors
