"""`supctl fleet`: control requests (status, start, stop, restart) carried over NATS request/reply.

Each master answers F.ctl.status and F.ctl.host.HOST with its own control handler, the same one
the control socket uses, so a fleet action does exactly what the local verb does. Only someone
who can log in to the fleet's NATS account (its credentials, and subject permissions if the
server sets them) can reach these subjects; every action is logged with the origin it claims.
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import msgspec

import supervisor
from supervisor.bridge.link import connect_options
from supervisor.bridge.wire import FleetAnswer, FleetAsk, Subjects
from supervisor.control.protocol import Action, ActionReply, Error, Frame, StatusReply, StatusRequest
from supervisor.config.nats import NatsConfig

if TYPE_CHECKING:
    from nats.aio.client import Client as Nats
    from nats.aio.msg import Msg as NatsMsg

log = logging.getLogger("supctl.bridge")

Handler = Callable[[Frame], Awaitable[Frame]]
_REQUEST: Any = StatusRequest | Action
_REPLY: Any = StatusReply | ActionReply | Error


class FleetControl:
    """The master's side: answers fleet requests with its control handler."""

    def __init__(self, host: str, fleet: str, handler: Handler, procfile: str) -> None:
        self.host = host
        self.subjects = Subjects(fleet)
        self.handler = handler
        self.procfile = procfile
        self.version = supervisor.__version__
        self._enc = msgspec.msgpack.Encoder()
        self._ask = msgspec.msgpack.Decoder(FleetAsk).decode
        self._request = msgspec.msgpack.Decoder(_REQUEST).decode

    async def attach(self, nc: Nats) -> None:
        await nc.subscribe(self.subjects.status, cb=self._on_request)
        await nc.subscribe(self.subjects.host(self.host), cb=self._on_request)

    async def _on_request(self, msg: NatsMsg) -> None:
        if not msg.reply:
            return
        try:
            ask = self._ask(msg.data)
            request = self._request(ask.request)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning("fleet: refused a request on %s: %s", msg.subject, exc)
            await msg.respond(self._answer(error=f"fleet control takes status, start, stop and restart: {exc}"))
            return
        if isinstance(request, Action):
            log.info("fleet: %s %s requested by %s", request.verb, request.target, ask.origin)
        try:
            reply = await self.handler(request)
        except Exception as exc:  # noqa: BLE001 - the requester hears it, the master goes on
            log.exception("fleet: %s from %s failed", type(request).__name__, ask.origin)
            reply = Error(message=f"{type(exc).__name__}: {exc}")
        await msg.respond(self._answer(reply=msgspec.Raw(self._enc.encode(reply))))

    def _answer(self, **kw: Any) -> bytes:
        return self._enc.encode(FleetAnswer(host=self.host, procfile=self.procfile, version=self.version,
                                            pid=os.getpid(), **kw))


class FleetReply(msgspec.Struct, kw_only=True):
    """One master's answer as the CLI shows it."""

    host: str
    procfile: str
    version: str
    pid: int
    reply: StatusReply | ActionReply | Error | None = None
    error: str = ""


def _origin() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()} (supctl pid {os.getpid()})"


def _decode(raw: bytes) -> FleetReply:
    answer = msgspec.msgpack.decode(raw, type=FleetAnswer)
    reply = None if answer.error else msgspec.msgpack.decode(answer.reply, type=_REPLY)
    return FleetReply(host=answer.host, procfile=answer.procfile, version=answer.version, pid=answer.pid,
                      reply=reply, error=answer.error)


async def _client(cfg: NatsConfig, base_dir: Path) -> Nats:
    import nats

    opts = connect_options(cfg, base_dir, f"supctl fleet {_origin()}")

    async def quiet(exc: Exception) -> None:
        log.debug("nats: %s", exc)

    try:
        return await nats.connect(**opts, error_cb=quiet)
    except Exception as exc:  # noqa: BLE001 - nats-py's errors are not OSErrors; the CLI prints this one line
        raise ConnectionError(f"cannot reach the fleet {cfg.fleet!r} at {', '.join(cfg.urls)}: {exc}") from None


async def fleet_status(cfg: NatsConfig, base_dir: Path, timeout: float) -> list[FleetReply]:
    """Every master that answers within `timeout` seconds, sorted by host."""
    nc = await _client(cfg, base_dir)
    try:
        inbox = nc.new_inbox()
        replies: list[FleetReply] = []
        sub = await nc.subscribe(inbox)
        ask = msgspec.msgpack.encode(FleetAsk(origin=_origin(), request=msgspec.Raw(msgspec.msgpack.encode(StatusRequest()))))
        await nc.publish(Subjects(cfg.fleet).status, ask, reply=inbox)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (left := deadline - loop.time()) > 0:
            try:
                msg = await sub.next_msg(timeout=left)
            except Exception:  # noqa: BLE001 - nats.errors.TimeoutError: the window closed
                break
            try:
                replies.append(_decode(msg.data))
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                log.warning("fleet: a bad status answer: %s", exc)
        return sorted(replies, key=lambda r: r.host)
    finally:
        await nc.close()


async def fleet_act(cfg: NatsConfig, base_dir: Path, verb: str, host: str, target: str, timeout: float) -> FleetReply:
    """Start, stop or restart `target` (BOT, BOT:k or all) on `host`'s master."""
    from nats.errors import NoRespondersError, TimeoutError as NatsTimeout

    nc = await _client(cfg, base_dir)
    try:
        action = msgspec.msgpack.encode(Action(verb=verb, target=target))  # type: ignore[arg-type]
        ask = msgspec.msgpack.encode(FleetAsk(origin=_origin(), request=msgspec.Raw(action)))
        try:
            msg = await nc.request(Subjects(cfg.fleet).host(host), ask, timeout=timeout)
        except NoRespondersError:
            raise LookupError(f"no master on host {host!r} in fleet {cfg.fleet!r}") from None
        except NatsTimeout:
            raise TimeoutError(f"host {host!r} did not answer within {timeout}s") from None
        return _decode(msg.data)
    finally:
        await nc.close()
