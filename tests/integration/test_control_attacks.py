"""Hostile frames on control.sock against a real daemonized master: deep nesting, floods, partial frames."""

from __future__ import annotations

import socket
import selectors
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
from daemon_helpers import Daemon, steady_master

from supervisor.control.client import Client
from supervisor.control.protocol import HEADER, MAX_REQUEST, PROTOCOL_VERSION, Error, Hello, StatusReply, StatusRequest, Welcome, encode, response_decoder
from supervisor.control.server import MAX_BUFFERED

MiB = 1 << 20
DEEP = b"\x82\xa6target" + b"\x91" * 5000 + b"\xc0" + b"\xa2op\xa6status"
"""A status request whose `target` is nested 5,000 arrays deep, before the tag: msgspec recurses into it."""


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory):
    with steady_master(tmp_path_factory.mktemp("control-attacks"), 'log = { max_size = "64KB", backups = 1 }') as d:
        yield d


def connect(d: Daemon) -> socket.socket:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(str(d.state / "control.sock"))
    return s


def last_word(s: socket.socket) -> object | None:
    """The master's reply before it closed the connection, or None if it closed without one."""
    data = b""
    try:
        while chunk := s.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass  # the master closed with bytes of ours unread; what it sent before is already here
    s.close()
    if not data:
        return None
    (size,) = HEADER.unpack(data[: HEADER.size])
    return response_decoder.decode(data[HEADER.size: HEADER.size + size])


def deep_frame_reply(d: Daemon) -> object | None:
    s = connect(d)
    s.sendall(encode(Hello(version=PROTOCOL_VERSION)))
    assert isinstance(response_decoder.decode(s.recv(65536)[4:]), Welcome)
    s.sendall(HEADER.pack(len(DEEP)) + DEEP)
    return last_word(s)


def master_logs(d: Daemon) -> list[Path]:
    return sorted((d.state / "logs").glob("supervisor.log*"))


def healthy(d: Daemon) -> None:
    with Client(str(d.state / "control.sock")) as c:
        assert isinstance(c.call(StatusRequest()), StatusReply)


def test_deeply_nested_frame_gets_an_error_reply_and_one_log_line(master: Daemon) -> None:
    before = sum(p.read_text().count("refused a client") for p in master_logs(master))
    reply = deep_frame_reply(master)
    assert isinstance(reply, Error) and "malformed frame" in reply.message and "recursion" in reply.message
    text = "".join(p.read_text() for p in master_logs(master))
    assert text.count("refused a client") == before + 1
    assert "Traceback" not in text and "RecursionError" not in text
    healthy(master)


def test_flood_of_deep_frames_stays_inside_the_rotating_log(master: Daemon) -> None:
    for _ in range(2000):
        assert isinstance(deep_frame_reply(master), Error)
    files = master_logs(master)
    assert [p.name for p in files] == ["supervisor.log", "supervisor.log.1"]
    assert all(p.stat().st_size <= 64_000 for p in files), [(p.name, p.stat().st_size) for p in files]
    assert "Traceback" not in "".join(p.read_text() for p in files)
    healthy(master)


def rss(d: Daemon) -> int:
    pid = d.master_pid()
    assert pid is not None
    return psutil.Process(pid).memory_info().rss


def test_200_clients_with_partial_4mib_frames_do_not_grow_the_master(master: Daemon) -> None:
    body = b"\0" * (4 * MiB - 1)
    base = rss(master)

    def attack(_: int) -> socket.socket:
        s = connect(master)
        try:
            s.sendall(HEADER.pack(4 * MiB) + body)
        except OSError:
            pass  # refused at the header: the master closed while we were still sending
        return s

    with ThreadPoolExecutor(50) as pool:
        socks = list(pool.map(attack, range(200)))
    during = rss(master)
    replies = [last_word(s) for s in socks]
    assert all(r is None or (isinstance(r, Error) and "exceeds" in r.message) for r in replies)
    healthy(master)
    after = rss(master)
    assert during - base < 64 * MiB, f"master grew by {(during - base) / MiB:.0f} MiB during the attack"
    assert after - base < 32 * MiB, f"master still {(after - base) / MiB:.0f} MiB bigger after the attack"


def partial(d: Daemon, held: int) -> socket.socket:
    """A connection holding `held` bytes of a request frame the master must keep until the rest comes."""
    s = connect(d)
    s.sendall(HEADER.pack(MAX_REQUEST) + b"\x81" * held)
    return s


def test_partial_frames_are_capped_in_total_and_freed_on_close(master: Daemon) -> None:
    held = 50 * 1024
    fits = MAX_BUFFERED // (held + HEADER.size)
    socks = [partial(master, held) for _ in range(fits + 30)]
    refused: list[object] = []
    with selectors.DefaultSelector() as sel:  # at most `fits` can be held, so at least 30 are answered
        for s in socks:
            sel.register(s, selectors.EVENT_READ)
        deadline = time.monotonic() + 30
        while len(refused) < 30 and time.monotonic() < deadline:
            for key, _ in sel.select(deadline - time.monotonic()):
                sel.unregister(key.fileobj)
                refused.append(last_word(key.fileobj))
    assert len(refused) >= 30
    assert all(isinstance(r, Error) and "partial frames of all connections" in r.message for r in refused)
    for s in socks:
        if s.fileno() != -1:
            s.settimeout(30)
            s.shutdown(socket.SHUT_WR)
            last_word(s)  # EOF: the master has closed its end and given the bytes back
    again = [partial(master, held) for _ in range(fits)]
    for s in again:  # every partial fits again: the bytes of the closed ones were freed
        s.sendall(b"\0" * (MAX_REQUEST - held))
    for s in again:
        s.shutdown(socket.SHUT_WR)
        reply = last_word(s)
        assert isinstance(reply, Error) and "malformed frame" in reply.message
    healthy(master)
