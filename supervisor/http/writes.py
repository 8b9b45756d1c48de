"""The write endpoints and their bearer token: POST /bots/NAME/start|stop|restart, /reload, /kill-switch.

No cookies, so no CSRF: a browser never sends the token by itself. A wrong or missing token gets 401 and
changes nothing; the comparison takes the same time wherever the strings differ.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

import msgspec

from ..config.http import read_token
from ..control.handlers import Handlers
from ..control.protocol import Action, ActionReply, Error, Frame, KillSwitchReply, KillSwitchRequest, Reload, ReloadReply
from ..core.errors import ConfigError, ConfigErrors
from ..engine.fleet import Fleet
from .wire import Request, Response, Router, problem

_encoder = msgspec.json.Encoder()


def json_response(status: int, body: object, headers: Mapping[str, str] | None = None) -> Response:
    """A control reply goes out without its wire tag ("op"): HTTP clients have the path to tell replies apart."""
    if isinstance(body, Frame):
        body = msgspec.structs.asdict(body)
    return Response(status, _encoder.encode(body), "application/json", headers)


class KillSwitchBody(msgspec.Struct, forbid_unknown_fields=True):
    activate: bool
    reason: str = ""


def generate_token(path: Path) -> None:
    """A fresh token, created owner-only (never chmod-ed later, so there is no moment it is readable by others)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.write(fd, (secrets.token_urlsafe(32) + "\n").encode())
    finally:
        os.close(fd)


class Writes:
    def __init__(self, token_path: Path, generated: bool, handlers: Handlers, fleet: Fleet) -> None:
        self.token_path = token_path
        self._generated = generated
        self._handlers, self._fleet = handlers, fleet
        self._token = b""

    def load_token(self) -> None:
        """Generate the default token file on first start; refuse to start on a token file others can read."""
        if self._generated and not self.token_path.exists():
            generate_token(self.token_path)
        try:
            self._token = read_token(self.token_path).encode()
        except ValueError as e:
            raise ConfigErrors([ConfigError(str(self.token_path), "http.token_file", str(e))]) from None

    def add_routes(self, router: Router) -> None:
        router.add("POST", "/bots/{bot}/{verb}", self._action)
        router.add("POST", "/reload", self._reload)
        router.add("POST", "/kill-switch", self._kill_switch)

    def _refused(self, request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self._token):
            return None
        why = "missing bearer token" if not header else "wrong bearer token"
        return problem(401, f"{request.method} {request.path}: {why} (Authorization: Bearer <the token in "
                       f"{self.token_path}>)", {"WWW-Authenticate": 'Bearer realm="supctl"'})

    async def _action(self, request: Request) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        name, verb = request.params["bot"], request.params["verb"]
        if verb not in ("start", "stop", "restart"):
            return problem(404, f"POST {request.path}: no such action {verb!r}; actions: start, stop, restart")
        if name not in self._fleet.bots:
            return problem(404, f"no bot named {name!r}; bots: {', '.join(self._fleet.bots) or 'none'}")
        instance = request.query.get("instance")
        target = name if instance is None else f"{name}:{instance}"
        reply = await self._handlers.handle(Action(verb=verb, target=target))  # type: ignore[arg-type]
        if isinstance(reply, Error):
            return problem(400, reply.message)
        assert isinstance(reply, ActionReply)
        return json_response(200 if reply.ok else 409, reply)

    async def _reload(self, request: Request) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        reply = await self._handlers.handle(Reload())
        if isinstance(reply, Error):
            return problem(422, reply.message)
        assert isinstance(reply, ReloadReply)
        return json_response(200, reply)

    async def _kill_switch(self, request: Request) -> Response:
        if (refused := self._refused(request)) is not None:
            return refused
        try:
            body = msgspec.json.decode(request.body, type=KillSwitchBody)
        except msgspec.DecodeError as e:
            return problem(400, f'POST /kill-switch: expected {{"activate": true|false, "reason": "..."}}: {e}')
        peer = request.remote or "unknown"
        reply = await self._handlers.handle(KillSwitchRequest(activate=body.activate, reason=body.reason, by=f"http {peer}"))
        if isinstance(reply, Error):
            return problem(400, reply.message)
        return json_response(200, reply)

    async def kill_switch_state(self, request: Request) -> Response:
        reply = await self._handlers.handle(KillSwitchRequest())
        assert isinstance(reply, KillSwitchReply)
        return json_response(200, reply.state)
