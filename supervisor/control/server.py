"""The master's end of control.sock: decode frames, call the handler, answer; bad frames never hurt the master."""

from __future__ import annotations

import asyncio
import logging
import os
from collections import deque
from pathlib import Path
from typing import Protocol

import msgspec

from ..core.frames import Budget, FrameError, FrameSplitter
from ..core.sockets import bind_private
from .protocol import (
    MAX_REQUEST,
    PROTOCOL_VERSION,
    Error,
    Frame,
    Hello,
    Request,
    Response,
    Shutdown,
    Welcome,
    encode,
)

IDLE_TIMEOUT = 60.0
"""A client that connects and sends nothing (or reads no reply) is dropped after this long (its own task, so
nothing stalls meanwhile)."""
MAX_CLIENTS = 128
"""Control connections at once; one more gets an error reply and is closed."""
MAX_BUFFERED = 4 << 20
"""Bytes of partial requests all control connections may hold together."""
READ_SIZE = 64 << 10
request_decoder = msgspec.msgpack.Decoder(Request)
"""Made here, not in protocol: no client decodes a request, and every `supctl` call would pay ~0.7 ms for it."""


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
        self._budget = Budget(MAX_BUFFERED)

    async def start(self) -> None:
        self.path.unlink(missing_ok=True)
        self._server = await asyncio.start_unix_server(self._serve, sock=bind_private(str(self.path)))

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
        splitter = FrameSplitter(MAX_REQUEST, self._budget)
        self._clients.add(task)
        try:
            if len(self._clients) > MAX_CLIENTS:
                await self._refuse(writer, f"more than {MAX_CLIENTS} control connections at once")
            elif await self._conversation(reader, writer, splitter):
                self._lingering.append(writer)
                return
        except (ConnectionError, TimeoutError):
            pass
        finally:
            self._clients.discard(task)
            splitter.release()
        writer.close()

    async def _conversation(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                            splitter: FrameSplitter) -> bool:
        """True when the client asked for shutdown: its connection stays open until the master exits,
        so the client sees EOF exactly when the master is gone."""
        greeted = False
        frames: deque[memoryview] = deque()
        while True:
            while not frames:
                chunk = await asyncio.wait_for(reader.read(READ_SIZE), IDLE_TIMEOUT)
                if not chunk:
                    return False
                try:
                    frames.extend(splitter.feed(chunk))
                except FrameError as e:
                    await self._refuse(writer, str(e))
                    return False
            try:
                request = request_decoder.decode(frames.popleft())
            except (msgspec.DecodeError, RecursionError) as e:
                await self._refuse(writer, f"malformed frame: {e}")
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

    async def _refuse(self, writer: asyncio.StreamWriter, why: str) -> None:
        """Hostile or broken input: one log line and an error reply, then the connection closes."""
        self.logger.warning("control socket: refused a client: %s", why)
        await self._reply(writer, Error(message=why))

    async def _reply(self, writer: asyncio.StreamWriter, frame: Frame) -> None:
        try:
            data = encode(frame)
        except (TypeError, msgspec.EncodeError) as e:  # a handler bug: the client gets an answer, not a closed socket
            self.logger.exception("control reply %s could not be encoded", type(frame).__name__)
            data = encode(Error(message=f"internal error: the reply could not be encoded: {e}"))
        writer.write(data)
        await asyncio.wait_for(writer.drain(), IDLE_TIMEOUT)
