"""[bus.nats] checks and the bridge's pure pieces: subjects, bucket keys, which served pattern an import covers."""

from __future__ import annotations

import pytest

from supervisor.bridge.wire import covers, kv_key, kv_topic, token
from supervisor.config.procfile import loads
from supervisor.core.errors import ConfigErrors

BOT = '[bots.a]\ncmd = "true"\n'


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigErrors) as e:
        loads(BOT + text, "p.toml")
    return [str(x) for x in e.value.errors]


def test_bus_nats_loads_with_import_spelled_as_in_toml() -> None:
    p = loads(BOT + '[bus.nats]\nurl = ["nats://a:4222", "b:4223"]\nfleet = "prod"\nhost = "h1"\n'
                    'export = ["prices.>"]\nimport = ["fills.*"]\n', "p.toml")
    cfg = p.bus.nats
    assert cfg is not None and cfg.urls == ["nats://a:4222", "b:4223"] and cfg.imports == ["fills.*"]
    assert cfg.bucket == "prod_retained" and cfg.host == "h1"
    assert loads(BOT, "p.toml").bus.nats is None


def test_every_bad_key_is_named() -> None:
    found = errors('[bus.nats]\nurl = "http://x"\nfleet = "a.b"\nuser = "u"\ntoken = "t"\nexport = ["a.>.b"]\n'
                   'import = ["supctl.presence.>"]\nbuffer = -1\nrequest_timeout = "soon"\n')
    assert any("bus.nats.url: expected nats://HOST:PORT" in e for e in found)
    assert any("bus.nats.fleet: expected 1-64 letters" in e for e in found)
    assert any("bus.nats.token: use one way to authenticate" in e for e in found)
    assert any("bus.nats.export[0]: bad pattern 'a.>.b'" in e for e in found)
    assert any("bus.nats.import[0]: presence crosses hosts on its own" in e for e in found)
    assert any("bus.nats.buffer: expected 0 to 10,000,000, found -1" in e for e in found)
    assert any("bus.nats.request_timeout: expected a duration" in e for e in found)
    assert errors('[bus.nats]\nexprt = []\nbuffer = "x"\n') == [
        "p.toml: bus.nats.exprt: unknown key (did you mean 'export'?)",
        "p.toml: bus.nats.buffer: expected an integer, found string 'x'"]


def test_password_needs_a_user() -> None:
    assert any("bus.nats.password: set together with user" in e for e in errors('[bus.nats]\npassword = "x"\n'))


@pytest.mark.parametrize(("outer", "inner", "expected"), [
    ("calc.>", "calc.double", True), ("calc.>", "calc.*", True), ("calc.>", "calc.>", True),
    ("calc.*", "calc.double", True), ("calc.*", "calc.>", False), ("calc.double", "calc.*", False),
    ("calc.>", "calc", False), ("*.x", "a.x", True), (">", "anything.at.all", True), ("a.b", "a.b.c", False),
])
def test_covers(outer: str, inner: str, expected: bool) -> None:
    assert covers(outer, inner) is expected


@pytest.mark.parametrize("topic", ["prices.btc", "a/b=c_d-e", "naïve.topic", "_x.looks.escaped", "x:y", "a.b#c"])
def test_bucket_keys_round_trip(topic: str) -> None:
    key = kv_key(topic)
    assert kv_topic(key) == topic
    assert all(c.isalnum() or c in "-/_=." for c in key) and key.isascii()


def test_host_token_is_one_subject_token() -> None:
    assert token("db.eu-1") == "db_eu-1" and token("a b*>") == "a_b__" and token("") == "_"
