"""[fleet.degradation]: thresholds checked at load, the level for a share."""

from __future__ import annotations

import pytest

from supervisor.config import procfile as config
from supervisor.config.fleet import DegradationConfig
from supervisor.core.errors import ConfigErrors
from supervisor.health.degradation import level_of

MINIMAL = b'[bots.a]\ncmd = "a"\n'


@pytest.mark.parametrize(("share", "level"), [(1.0, "normal"), (0.7, "normal"), (0.69, "reduced"), (0.4, "reduced"),
                                              (0.39, "minimal"), (0.2, "minimal"), (0.19, "emergency"), (0.0, "emergency")])
def test_the_deepest_level_whose_threshold_the_share_is_below(share: float, level: str) -> None:
    assert level_of(share, DegradationConfig()) == level


def test_without_the_table_nothing_is_configured() -> None:
    assert config.loads(MINIMAL, "p.toml").fleet.degradation is None
    cfg = config.loads(b"[fleet.degradation]\nreduced = 0.9\n" + MINIMAL, "p.toml").fleet.degradation
    assert cfg == DegradationConfig(reduced=0.9, minimal=0.4, emergency=0.2)


@pytest.mark.parametrize(("table", "key", "words"), [
    ("reduced = 1.5", "fleet.degradation.reduced", "expected a share from 0 to 1, found 1.5"),
    ("minimal = 0.8", "fleet.degradation", "expected reduced >= minimal >= emergency, found 0.7, 0.8, 0.2"),
    ("emergncy = 0.1", "fleet.degradation.emergncy", "emergency"),
])
def test_bad_thresholds_name_their_key(table: str, key: str, words: str) -> None:
    with pytest.raises(ConfigErrors) as e:
        config.loads(f"[fleet.degradation]\n{table}\n".encode() + MINIMAL, "p.toml")
    assert [x.key for x in e.value.errors] == [key]
    assert words in str(e.value)
