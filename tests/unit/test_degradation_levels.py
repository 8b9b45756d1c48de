"""[fleet.degradation]: thresholds checked at load, the level for a share, groups with levels of their own."""

from __future__ import annotations

import asyncio

import msgspec
import pytest

from supervisor.bus import frames as f
from supervisor.bus.state import DEGRADATION, FleetDegradation
from supervisor.config import procfile as config
from supervisor.config.fleet import DegradationConfig
from supervisor.control.bus_desk import MasterDesk
from supervisor.core.errors import BusError, ConfigErrors
from supervisor.core.states import State
from supervisor.health.degradation import Degradation, level_of
from supervisor.health.target import HealthBoard

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


GROUPS = b'''[fleet.degradation.groups.agents]
bots = ["planner", "coder"]
reduced = 0.9
minimal = 0.6
emergency = 0.3
[bots.planner]
cmd = "p"
[bots.coder]
cmd = "c"
instances = 2
[bots.feed]
cmd = "f"
'''


class Inst(msgspec.Struct):
    """What the count reads of an instance: its bot, index, state and whether it ever exited."""

    bot: str
    index: int = 0
    state: State = State.RUNNING
    last_exit: object = None


def test_a_group_has_its_own_level_over_its_bots_only() -> None:
    cfg = config.loads(GROUPS, "p.toml").fleet.degradation
    assert cfg is not None and cfg.groups["agents"].bots == ["planner", "coder"] and cfg.groups["agents"].reduced == 0.9
    fleet = [Inst("planner"), Inst("coder", 0), Inst("coder", 1), *(Inst("feed", k) for k in range(7))]
    told: list[tuple[str, str, str]] = []
    d = Degradation(cfg, lambda: fleet, HealthBoard(), lambda new, was: told.append((new.group, was, new.level)))
    d.update()
    assert told == [] and d.now().groups[0].total == 3
    fleet[1].state, fleet[1].last_exit = State.BACKOFF, 1  # 2 of 3 agents (0.67 < 0.9), 9 of 10 in the fleet
    d.update()
    assert told == [("agents", "normal", "reduced")], "the fleet is still normal"
    now = d.now()
    assert (now.level, now.healthy, now.total, now.group) == ("normal", 9, 10, "")
    assert [(g.group, g.level, g.healthy, g.total) for g in now.groups] == [("agents", "reduced", 2, 3)]
    for k in range(2, 5):
        fleet[k].state, fleet[k].last_exit = State.FATAL, 1  # feed 0..2 down too: the fleet 6 of 10, agents 1 of 3
    d.update()
    assert told[1:] == [("", "normal", "reduced"), ("agents", "reduced", "minimal")]
    assert d.state.groups == [] and d.groups["agents"].describe() == "group agents degradation minimal: 1 of 3 instances healthy (33%)"


@pytest.mark.parametrize(("table", "key", "words"), [
    ('bots = ["planner", "codr"]', "fleet.degradation.groups.agents.bots[1]", "unknown bot 'codr' (did you mean 'coder'?)"),
    ("bots = []", "fleet.degradation.groups.agents.bots", "expected the names of the bots in this group"),
    ('bots = ["planner"]\nminimal = 0.95', "fleet.degradation.groups.agents", "expected reduced >= minimal >= emergency"),
    ('bots = ["planner"]\nemergency = -1', "fleet.degradation.groups.agents.emergency", "expected a share from 0 to 1"),
])
def test_bad_groups_name_their_key(table: str, key: str, words: str) -> None:
    text = f"[fleet.degradation.groups.agents]\n{table}\n".encode() + GROUPS[GROUPS.index(b"[bots.planner]"):]
    with pytest.raises(ConfigErrors) as e:
        config.loads(text, "p.toml")
    assert [x.key for x in e.value.errors] == [key]
    assert words in str(e.value)


def test_a_group_name_is_one_topic_token() -> None:
    with pytest.raises(ConfigErrors) as e:
        config.loads(b'[fleet.degradation.groups."a*b"]\nbots = ["planner"]\n' + MINIMAL.replace(b"bots.a", b"bots.planner"), "p.toml")
    assert [x.key for x in e.value.errors] == ["fleet.degradation.groups.a*b"]


def test_a_bot_asks_for_the_fleet_or_one_group() -> None:
    """The master's answer on supctl.fleet.degradation: the fleet with its groups, one group, or an error naming them."""
    fleet = FleetDegradation(level="normal", groups=[FleetDegradation(level="minimal", group="agents")])
    desk = MasterDesk(None, lambda bot: True, lambda: fleet, None, lambda bot: False)  # type: ignore[arg-type]

    def ask(group: str | None) -> FleetDegradation:
        req = f.Request(1, DEGRADATION, msgspec.Raw(msgspec.msgpack.encode(group)), "planner", 0)
        return msgspec.msgpack.decode(asyncio.run(desk.answer(req)), type=FleetDegradation)

    assert ask(None) == fleet and ask("agents") == fleet.groups[0]
    with pytest.raises(BusError, match=r"no group 'nope' in \[fleet.degradation.groups\] \(groups: agents\)"):
        ask("nope")
