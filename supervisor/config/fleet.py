"""`[fleet.degradation]`: the share of healthy instances below which the fleet runs reduced, minimal or emergency."""

from __future__ import annotations

from ..core.errors import ConfigError
from .common import Struct


class DegradationConfig(Struct):
    reduced: float = 0.7
    minimal: float = 0.4
    emergency: float = 0.2


class FleetConfig(Struct):
    degradation: DegradationConfig | None = None
    """Without it no level is computed or published."""


def check_fleet(file: str, fleet: FleetConfig) -> list[ConfigError]:
    cfg = fleet.degradation
    if cfg is None:
        return []
    errors = [ConfigError(file, f"fleet.degradation.{k}", f"expected a share from 0 to 1, found {v:g}")
              for k, v in (("reduced", cfg.reduced), ("minimal", cfg.minimal), ("emergency", cfg.emergency))
              if not 0 <= v <= 1]
    if not errors and not cfg.reduced >= cfg.minimal >= cfg.emergency:
        errors.append(ConfigError(file, "fleet.degradation", f"expected reduced >= minimal >= emergency, found "
                                  f"{cfg.reduced:g}, {cfg.minimal:g}, {cfg.emergency:g}"))
    return errors
