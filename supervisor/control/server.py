"""The master's end of control.sock: decode frames, call the handler, answer; bad frames never hurt the master."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Protocol

import msgspec

from .protocol import (
    HEADER,
    MAX_FRAME,
    PROTOCOL_VERSION,
    Error,
    Frame,
    Hello,
    Response,
    Shutdown,
    Welcome,
    encode,
    request_decoder,
)

IDLE_TIMEOUT = 60.0
"""A client that connects and sends nothing is dropped after this long (its own task, so nothing stalls meanwhile)."""


class Handler(Protocol):
    """What the master offers the control plane."""

    procfile_path: str

    async def handle(self, request: Frame) -> Response: ...


class ControlServer:
    def __init__(self, path: Path, handler: Handler, logger: logging.Logger) -> None:
        self.path = path
        self.handler = handler
        self.logger = logger
        self._server: asyncio.AbstractServer | None = None
        self._clients: set[asyncio.Task[None]] = set()
        self._busy: set[asyncio.Task[None]] = set()
        self._lingering: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self.path.unlink(missing_ok=True)
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=str(self.path))
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)

    async def close(self, grace: float = 5.0) -> None:
        """Stop listening, drop idle clients, and let requests in progress (a `shutdown`) send their reply."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for task in self._clients - self._busy:
            task.cancel()
        if self._busy:
            await asyncio.wait(self._busy, timeout=grace)
        self.path.unlink(missing_ok=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        try:
            if await self._conversation(reader, writer):
                self._lingering.append(writer)
                return False
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        finally:
            self._clients.discard(task)
        writer.close()

    async def _conversation(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """True when the client asked for shutdown: its connection stays open until the master exits,
        so the client sees EOF exactly when the master is gone."""
        greeted = False
        while True:
            header = await asyncio.wait_for(reader.readexactly(HEADER.size), IDLE_TIMEOUT)
            (size,) = HEADER.unpack(header)
            if size > MAX_FRAME:
                await self._reply(writer, Error(message=f"frame of {size} bytes exceeds the limit of {MAX_FRAME}"))
                return False
            body = await asyncio.wait_for(reader.readexactly(size), IDLE_TIMEOUT)
            try:
                request = request_decoder.decode(body)
            except msgspec.DecodeError as e:
                await self._reply(writer, Error(message=f"malformed frame: {e}"))
                return False
            if not greeted:
                if not isinstance(request, Hello):
                    await self._reply(writer, Error(message="expected hello first"))
                    return False
                if request.version != PROTOCOL_VERSION:
                    await self._reply(writer, Error(message=f"protocol version {request.version} is not supported by this master (version {PROTOCOL_VERSION}); use the supctl that started it"))
                    return False
                greeted = True
                await self._reply(writer, Welcome(version=PROTOCOL_VERSION, master_pid=os.getpid(), procfile=self.handler.procfile_path))
                continue
            if isinstance(request, Hello):
                await self._reply(writer, Error(message="hello sent twice"))
                return False
            task = asyncio.current_task()
            assert task is not None
            self._busy.add(task)
            try:
                reply = await self.handler.handle(request)
            except Exception as e:  # a handler bug must not take the master down
                self.logger.exception("control request %s failed", request)
                reply = Error(message=f"internal error: {e}")
            finally:
                self._busy.discard(task)
            await self._reply(writer, reply)
            if isinstance(request, Shutdown) and not isinstance(reply, Error):
                return True

    async def _reply(self, writer: asyncio.StreamWriter, frame: Frame) -> None:
        writer.write(encode(frame))
        await writer.drain()

