"""control.sock and bus.sock are owner-only from the instant they exist (issue 12 item 12): their mode is set on the
socket before bind, never by a chmod through a path someone could have swapped, nor by changing the process umask."""

from __future__ import annotations

import asyncio
import logging
import os
import stat
from pathlib import Path

import pytest

from supervisor.bus.broker import Broker
from supervisor.control.server import ControlServer
from supervisor.core.sockets import bind_private

log = logging.getLogger("test")


@pytest.fixture
def no_chmod(monkeypatch: pytest.MonkeyPatch):
    """A permissive umask (022 would leave a socket 0755), then every chmod/umask call is recorded."""
    old = os.umask(0o022)
    calls: list[tuple[str, tuple[object, ...]]] = []
    for name in ("chmod", "lchmod", "umask"):
        real = getattr(os, name, None)
        if real is not None:
            monkeypatch.setattr(os, name, lambda *a, _n=name, _r=real, **k: (calls.append((_n, a)), _r(*a, **k))[1])
    yield calls
    monkeypatch.undo()
    os.umask(old)


def mode(path: Path) -> int:
    st = os.lstat(path)
    assert stat.S_ISSOCK(st.st_mode)
    return stat.S_IMODE(st.st_mode)


def test_bind_private_socket_is_0600_under_umask_022(tmp_path: Path, no_chmod) -> None:
    sock = bind_private(str(tmp_path / "s.sock"))
    try:
        assert mode(tmp_path / "s.sock") == 0o600
    finally:
        sock.close()
    assert no_chmod == []


def test_control_and_bus_sockets_are_0600_and_never_chmodded_by_path(tmp_path: Path, no_chmod) -> None:
    class Handler:
        procfile_path = str(tmp_path / "procfile.toml")

        async def handle(self, request: object) -> object:
            raise AssertionError("no request is sent")

    async def main() -> tuple[int, int]:
        control = ControlServer(tmp_path / "control.sock", Handler(), log)  # type: ignore[arg-type]
        bus = Broker(tmp_path / "bus.sock", log=log)
        await control.start()
        await bus.start()
        try:
            return mode(tmp_path / "control.sock"), mode(tmp_path / "bus.sock")
        finally:
            await bus.close()
            await control.close()

    assert asyncio.run(main()) == (0o600, 0o600)
    assert no_chmod == []
