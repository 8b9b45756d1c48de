"""[http] validation: loopback by default, a network address only with an owner-only token_file."""

from __future__ import annotations

import os

import pytest

from supervisor.config.procfile import load
from supervisor.core.errors import ConfigErrors

BOT = '[bots.a]\ncmd = "true"\n'


def errors_of(path) -> list[str]:
    with pytest.raises(ConfigErrors) as e:
        load(path)
    return [str(err) for err in e.value.errors]


def test_loopback_by_default(write) -> None:
    p = load(write("procfile.toml", "[http]\n" + BOT))
    assert p.http is not None and p.http.listen == "127.0.0.1:9100"
    assert p.http_token_path() == p.state_dir / "http.token"
    assert load(write("procfile.toml", BOT)).http is None


def test_non_loopback_without_token_file_is_refused(write) -> None:
    path = write("procfile.toml", '[http]\nlisten = "0.0.0.0:9100"\n' + BOT)
    [msg] = errors_of(path)
    assert "http.listen" in msg and "not a loopback address" in msg and "token_file" in msg
    for ok in ("[::1]:9100", "localhost:9100", "127.0.0.2:0"):
        assert load(write("procfile.toml", f'[http]\nlisten = "{ok}"\n' + BOT)).http is not None


def test_token_file_must_be_owner_only_and_real(write, tmp_path) -> None:
    token = write("secret/token", "a" * 32 + "\n")
    os.chmod(token, 0o644)
    path = write("procfile.toml", '[http]\nlisten = "0.0.0.0:9100"\ntoken_file = "secret/token"\n' + BOT)
    [msg] = errors_of(path)
    assert "http.token_file" in msg and "chmod 600" in msg and "0644" in msg
    os.chmod(token, 0o600)
    p = load(path)
    assert p.http_token_path() == token.resolve()
    token.write_text("short")
    assert "at least 16 characters" in errors_of(path)[0]
    token.unlink()
    assert "cannot read" in errors_of(path)[0]


@pytest.mark.parametrize("listen, words", [("9100", "HOST:PORT"), ("127.0.0.1:http", "port"),
                                           ("127.0.0.1:70000", "port")])
def test_bad_listen_names_the_key(write, listen, words) -> None:
    [msg] = errors_of(write("procfile.toml", f'[http]\nlisten = "{listen}"\n' + BOT))
    assert "http.listen" in msg and words in msg


def test_unknown_http_key_is_named(write) -> None:
    [msg] = errors_of(write("procfile.toml", '[http]\nlisen = "127.0.0.1:1"\n' + BOT))
    assert "http.lisen" in msg and "listen" in msg
