"""Random and mutated procfiles: the loader raises only ConfigErrors, never anything else."""

from __future__ import annotations

import datetime as dt

import tomli_w
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.config import procfile as config
from supervisor.core.errors import ConfigErrors

VALID = b'''
[supervisor]
state_dir = ".supctl"
log = { max_size = "1MB", backups = 2 }
[defaults]
restart = "on-failure"
backoff = { initial = "100ms", factor = 2.0, max = "30s", jitter = 0.1 }
restart_limit = { count = 10, window = "5m" }
start_grace = "1s"
stop_signal = "TERM"
stop_timeout = "10s"
env = { MODE = "paper" }
[bots.feed]
cmd = ["python", "-m", "feed"]
[bots.trader]
cmd = "python -m trader --x 'y z'"
instances = 2
cwd = "."
env = { A = "1" }
depends_on = ["feed"]
success_codes = [0, 3]
log = { timestamps = true }
'''

KEYS = ["supervisor", "defaults", "bots", "state_dir", "log", "max_size", "backups", "timestamps", "cmd", "shell",
        "cwd", "env", "env_file", "instances", "autostart", "restart", "success_codes", "backoff", "initial",
        "factor", "max", "jitter", "restart_limit", "count", "window", "start_grace", "stop_signal",
        "stop_timeout", "depends_on", "feed", "trader", "x"]

user_keys = st.text(max_size=8).filter(lambda k: not k.startswith("$"))
"""A key the user wrote may be "$" too; the oracle below tells msgspec's "$..." paths apart only without them."""
toml_scalars = (st.booleans() | st.integers(-2**63, 2**63 - 1) | st.floats(allow_nan=True) | st.text(max_size=20)
                | st.sampled_from(["1s", "0ms", "5m", "50MB", "TERM", "KILL", "always", "never", "", "feed", "trader"])
                | st.datetimes(min_value=dt.datetime(1, 1, 1)) | st.dates() | st.times())
toml_values = st.recursive(toml_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.sampled_from(KEYS) | user_keys, inner, max_size=4), max_leaves=12)


def load_only_config_errors(data: bytes | str) -> None:
    try:
        config.loads(data, "fuzz.toml")
    except ConfigErrors as e:
        assert e.errors and all(err.file == "fuzz.toml" for err in e.errors)
        assert all(not err.key.startswith("$") and "$." not in err.key for err in e.errors)


@settings(max_examples=300)
@given(st.binary(max_size=300) | st.text(max_size=300))
def test_random_bytes(data):
    load_only_config_errors(data)


@settings(max_examples=400)
@given(st.data())
def test_mutated_valid_procfile(data):
    text = bytearray(VALID)
    for _ in range(data.draw(st.integers(1, 6))):
        op = data.draw(st.sampled_from(["drop", "insert", "replace"]))
        i = data.draw(st.integers(0, len(text) - 1))
        if op == "drop":
            del text[i:i + data.draw(st.integers(1, 8))]
        elif op == "insert":
            text[i:i] = data.draw(st.binary(min_size=1, max_size=4) | st.sampled_from([b"[", b"]", b'"', b"=", b"\n", b"{", b","]))
        else:
            text[i] = data.draw(st.integers(0, 255))
    load_only_config_errors(bytes(text))


@settings(max_examples=400)
@given(st.data())
def test_random_values_in_random_keys(data):
    doc = config.msgspec.toml.decode(VALID)
    for _ in range(data.draw(st.integers(1, 4))):
        # walk into a random table, then set a random key there to a random value
        table = doc
        while True:
            subtables = [k for k, v in table.items() if isinstance(v, dict)]
            if not subtables or data.draw(st.booleans()):
                break
            table = table[data.draw(st.sampled_from(subtables))]
        table[data.draw(st.sampled_from(KEYS) | user_keys.filter(bool))] = data.draw(toml_values)
    try:
        text = tomli_w.dumps(doc)
    except (TypeError, ValueError):
        return  # a value TOML cannot hold (a NaN key path, a tz-aware time): not a procfile anyone can write
    load_only_config_errors(text)
