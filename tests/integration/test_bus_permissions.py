"""Per-bot allow lists from the procfile, and the master's own bus token out of every bot's reach, in a real master."""

from __future__ import annotations

import json

from harness import bot, wait_until


def test_a_bot_can_neither_hijack_a_serve_nor_find_the_master_token(master) -> None:
    m = master(f'''
        [supervisor]
        state_dir = "state"
        [defaults]
        start_grace = "100ms"
        [bots.feed]
        cmd = {bot("bus_thief", "feed")}
        bus = {{ serve = ["feed.>"], publish = [] }}
        [bots.thief]
        cmd = {bot("bus_thief", "thief")}
        depends_on = ["feed"]
        bus = {{ serve = ["thief.>"], subscribe = ["thief.>"] }}
    ''')
    wait_until(lambda: m.json_lines("feed"), 15, "feed serving")
    report = wait_until(lambda: m.json_lines("thief"), 30, "the thief's report")[0]
    assert ["supctl", 0] not in report["identities"], "a bot found the master's own bus token in the state dir"
    assert report["answers"] == ["real"] * 20
    assert not (m.state_dir / "bus.token").exists()
    row = next(r for r in json.loads(m.ctl("status", "--json").stdout)["instances"] if r["bot"] == "thief")
    assert "refused 1" in row["bus"]
