"""The control socket under abuse: garbage, silence, oversized and truncated frames, version skew, 50 clients at once."""

from __future__ import annotations

import socket
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import msgspec
import pytest
from daemon_helpers import Daemon, steady_master
from hypothesis import given, settings
from hypothesis import strategies as st

from supervisor.control.client import Client
from supervisor.control.protocol import (
    HEADER,
    MAX_FRAME,
    PROTOCOL_VERSION,
    Error,
    Hello,
    StatusReply,
    StatusRequest,
    encode,
    response_decoder,
)
from supervisor.core.errors import ControlError


@pytest.fixture(scope="module")
def master(tmp_path_factory: pytest.TempPathFactory):
    with steady_master(tmp_path_factory.mktemp("control")) as d:
        yield d


def sock_path(d: Daemon) -> Path:
    return d.state / "control.sock"


def raw(d: Daemon) -> socket.socket:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(10)
    s.connect(str(sock_path(d)))
    return s


def read_reply(s: socket.socket) -> object | None:
    """The one reply before the master closes, or None when it closed without one."""
    data = b""
    while chunk := s.recv(65536):
        data += chunk
    if not data:
        return None
    (size,) = HEADER.unpack(data[: HEADER.size])
    return response_decoder.decode(data[HEADER.size: HEADER.size + size])


def still_healthy(d: Daemon) -> None:
    with Client(sock_path(d)) as c:
        reply = c.call(StatusRequest())
    assert isinstance(reply, StatusReply) and reply.instances[0].state == "RUNNING"


def test_garbage_gets_an_error_and_the_connection_closes(master: Daemon) -> None:
    s = raw(master)
    s.sendall(HEADER.pack(5) + b"\xc1\xc1\xc1\xc1\xc1")
    reply = read_reply(s)
    assert isinstance(reply, Error) and "malformed frame" in reply.message
    still_healthy(master)


def test_oversized_frame_is_refused(master: Daemon) -> None:
    s = raw(master)
    s.sendall(HEADER.pack(MAX_FRAME + 1))
    reply = read_reply(s)
    assert isinstance(reply, Error) and "exceeds" in reply.message
    still_healthy(master)


def test_truncated_frame_and_silent_client_do_not_stall_others(master: Daemon) -> None:
    silent = raw(master)
    truncated = raw(master)
    truncated.sendall(HEADER.pack(100) + b"\x81")
    still_healthy(master)
    truncated.close()
    still_healthy(master)
    silent.close()


def test_request_before_hello_is_refused(master: Daemon) -> None:
    s = raw(master)
    s.sendall(encode(StatusRequest()))
    reply = read_reply(s)
    assert isinstance(reply, Error) and "hello" in reply.message


def test_other_protocol_version_gets_a_clear_error(master: Daemon) -> None:
    s = raw(master)
    s.sendall(encode(Hello(version=PROTOCOL_VERSION + 1)))
    reply = read_reply(s)
    assert isinstance(reply, Error) and f"protocol version {PROTOCOL_VERSION + 1} is not supported" in reply.message


def test_unknown_op_is_refused(master: Daemon) -> None:
    s = raw(master)
    body = msgspec.msgpack.encode({"op": "launch_missiles"})
    s.sendall(HEADER.pack(len(body)) + body)
    assert isinstance(read_reply(s), Error)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=64))
def test_fuzzed_frames_never_hurt_the_master(master: Daemon, blob: bytes) -> None:
    s = raw(master)
    s.sendall(HEADER.pack(len(blob)) + blob)
    s.shutdown(socket.SHUT_WR)
    try:
        read_reply(s)
    except (msgspec.DecodeError, struct.error):
        pass
    s.close()
    still_healthy(master)


def test_fifty_concurrent_clients_are_all_answered(master: Daemon) -> None:
    def one(_: int) -> int:
        with Client(sock_path(master)) as c:
            reply = c.call(StatusRequest(target="steady"))
        assert isinstance(reply, StatusReply)
        return len(reply.instances)

    with ThreadPoolExecutor(50) as pool:
        assert list(pool.map(one, range(50))) == [1] * 50


def test_client_reports_a_master_that_is_not_there(tmp_path: Path) -> None:
    with pytest.raises(ControlError, match="no master is listening"):
        Client(tmp_path / "control.sock")
