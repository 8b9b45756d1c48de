"""HTTP/1.1 on asyncio streams with h11 (sans-IO): routing, keep-alive, bounded requests, streamed replies.

Not aiohttp: importing `aiohttp.web` costs the master 12-14 MiB of RSS (its `__init__` loads the client half
too), h11 about 0.2 MiB. The server needs little: a few fixed routes, small bodies, two endless streams.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from http import HTTPStatus
from urllib.parse import parse_qsl, unquote, urlsplit

import h11
import msgspec

MAX_BODY = 64 * 1024
MAX_HEAD = 16 * 1024
"""Request line and headers together; h11 answers a bigger head with 431 (its max_incomplete_event_size)."""
IDLE = 75.0
"""A kept-alive connection with no request for this long is closed (what aiohttp and nginx wait)."""
DRAIN = 2.0
"""On shutdown, requests in flight get this long before their connections are cut."""
READ = 64 * 1024

_encoder = msgspec.json.Encoder()


class Request:
    def __init__(self, method: str, target: bytes, headers: list[tuple[bytes, bytes]], remote: str,
                 reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.method, self.remote = method, remote
        raw_path, _, raw_query = target.decode("latin-1").partition("?")
        if raw_path.startswith(("http://", "https://")):  # the absolute form, which HTTP/1.1 servers must accept
            raw_path = urlsplit(raw_path).path or "/"
        self.path = unquote(raw_path)
        self.segments = [unquote(s) for s in raw_path.split("/")[1:]] if raw_path.startswith("/") else []
        self.query: dict[str, str] = {}
        for k, v in parse_qsl(raw_query, keep_blank_values=True):
            self.query.setdefault(k, v)
        self.headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers}
        """Lower-case names (h11 normalises them); a repeated header keeps its last value."""
        self.params: dict[str, str] = {}
        self.body = b""
        self._reader, self._writer = reader, writer

    def gone(self) -> bool:
        """The client hung up (a streaming handler with nothing to send would not notice otherwise)."""
        return self._reader.at_eof() or self._writer.is_closing()


class Response:
    """`body` is bytes, or an async iterator of chunks for a stream (sent chunked, or until close to HTTP/1.0)."""

    def __init__(self, status: int, body: bytes | AsyncIterator[bytes], content_type: str | None,
                 headers: Mapping[str, str] | None = None) -> None:
        self.status, self.body = status, body
        self.headers = [(k, v) for k, v in (headers or {}).items()]
        if content_type is not None:
            self.headers.insert(0, ("Content-Type", content_type))
        if isinstance(body, bytes):
            self.headers.append(("Content-Length", str(len(body))))


Handler = Callable[[Request], Awaitable[Response]]


def problem(status: int, message: str, headers: Mapping[str, str] | None = None) -> Response:
    """Every error is {"error": "..."} with a sentence that names the request and what is wrong."""
    return Response(status, _encoder.encode({"error": message}), "application/json", headers)


class Router:
    """Paths as segment templates: "{bot}" matches one non-empty segment (percent-decoded, so "a%2Fb" is one)."""

    def __init__(self) -> None:
        self._routes: list[tuple[list[str], dict[str, Handler]]] = []

    def add(self, method: str, path: str, handler: Handler) -> None:
        template = path.split("/")[1:]
        for t, methods in self._routes:
            if t == template:
                methods[method] = handler
                return
        self._routes.append((template, {method: handler}))

    async def dispatch(self, request: Request) -> Response:
        """404 for an unknown path, 405 with Allow for a known one asked with another method (HEAD too)."""
        for template, methods in self._routes:
            params = match(template, request.segments)
            if params is None:
                continue
            handler = methods.get(request.method)
            if handler is None:
                return problem(405, f"{request.method} {request.path}: Method Not Allowed", {"Allow": ",".join(methods)})
            request.params = params
            return await handler(request)
        return problem(404, f"{request.method} {request.path}: Not Found")


def match(template: list[str], segments: list[str]) -> dict[str, str] | None:
    if len(template) != len(segments):
        return None
    params = {}
    for t, s in zip(template, segments, strict=True):
        if t.startswith("{"):
            if not s:
                return None
            params[t[1:-1]] = s
        elif t != s:
            return None
    return params


class Server:
    """One task per connection; `close` cuts idle ones at once and the others after DRAIN seconds."""

    def __init__(self, router: Router, logger: logging.Logger) -> None:
        self._router, self._log = router, logger
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._busy: set[asyncio.Task[None]] = set()
        self._closing = False

    async def start(self, host: str, port: int) -> int:
        """Listens and returns the bound port (the one the OS chose for port 0)."""
        self._server = await asyncio.start_server(self._serve, host, port, reuse_address=True)
        return self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Streams see the closing flag of their owner first; what is still open after DRAIN is cancelled."""
        self._closing = True
        if self._server is not None:
            self._server.close()
        for task, writer in list(self._connections.items()):
            if task not in self._busy:
                writer.close()
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=DRAIN)
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        peer = writer.get_extra_info("peername")
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        try:
            while await self._one(task, conn, reader, writer, peer[0] if isinstance(peer, tuple) else "unknown") and not self._closing:
                conn.start_next_cycle()
        except (ConnectionError, TimeoutError):
            pass
        except Exception:  # noqa: BLE001 -- a stream that fails mid-way can only be cut: its status line is sent
            self._log.exception("http: connection from %s failed", peer)
        finally:
            del self._connections[task]
            self._busy.discard(task)
            writer.close()

    async def _next(self, conn: h11.Connection, reader: asyncio.StreamReader) -> h11.Event | type[h11.NEED_DATA]:
        """asyncio.timeout, not wait_for: 3.11's wait_for wraps each read in a task of its own."""
        while (event := conn.next_event()) is h11.NEED_DATA:
            async with asyncio.timeout(IDLE):
                data = await reader.read(READ)
            conn.receive_data(data)
        return event

    async def _one(self, task: asyncio.Task[None], conn: h11.Connection, reader: asyncio.StreamReader,
                   writer: asyncio.StreamWriter, peer: str) -> bool:
        """Reads one request and answers it; False when the connection is to close."""
        method = "GET"
        try:
            event = await self._next(conn, reader)
            if not isinstance(event, h11.Request):
                return False
            self._busy.add(task)
            method = event.method.decode("latin-1")
            request = Request(method, event.target, list(event.headers), peer, reader, writer)
            response = await self._body(conn, reader, writer, request)
            if response is None:
                response = await self._handle(request)
        except h11.RemoteProtocolError as e:
            if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
                return False
            response = problem(e.error_status_hint, f"bad request: {e}")
        await self._send(conn, writer, method, response)
        self._busy.discard(task)
        return conn.our_state is h11.DONE and conn.their_state is h11.DONE

    async def _body(self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    request: Request) -> Response | None:
        """Reads the body up to MAX_BODY; a 413 reply (and a closed connection) past it."""
        length = request.headers.get("content-length", "0")
        too_big = problem(413, f"{request.method} {request.path}: Request Entity Too Large (at most {MAX_BODY} bytes)")
        if length.isdigit() and int(length) > MAX_BODY:
            return too_big
        if conn.they_are_waiting_for_100_continue:
            writer.write(conn.send(h11.InformationalResponse(status_code=100, headers=[], reason=b"Continue")))
        chunks, size = [], 0
        while not isinstance(event := await self._next(conn, reader), h11.EndOfMessage):
            if isinstance(event, h11.Data):
                size += len(event.data)
                if size > MAX_BODY:
                    return too_big
                chunks.append(event.data)
        request.body = b"".join(chunks)
        return None

    async def _handle(self, request: Request) -> Response:
        """A bug in a handler is logged and answered, never fatal."""
        try:
            return await self._router.dispatch(request)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 -- answered with a 500 and logged
            self._log.exception("http: %s %s failed", request.method, request.path)
            return problem(500, f"{request.method} {request.path}: internal error (see the master log)")

    async def _send(self, conn: h11.Connection, writer: asyncio.StreamWriter, method: str, response: Response) -> None:
        headers = list(response.headers)
        if conn.their_state is not h11.DONE:
            headers.append(("Connection", "close"))  # the rest of the request is not read: the connection cannot be reused
        writer.write(conn.send(h11.Response(status_code=response.status, headers=headers,
                                            reason=HTTPStatus(response.status).phrase)))
        body = response.body
        if isinstance(body, bytes):
            if body and method != "HEAD":
                writer.write(conn.send(h11.Data(data=body)))
        else:
            try:
                async for chunk in body:
                    writer.write(conn.send(h11.Data(data=chunk)))
                    await writer.drain()
            finally:
                await body.aclose()  # type: ignore[attr-defined]
        writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()
