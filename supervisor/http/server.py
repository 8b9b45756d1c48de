"""The HTTP server inside the master, on the master's own event loop (h11 on asyncio streams, see `wire`).

Reads go through the same control handlers as `supctl` (GET /status is `supctl status --json`), writes too,
after the bearer token; nothing here changes the fleet by itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from importlib import resources
from pathlib import Path

import msgspec
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from ..bus.broker import Broker
from ..config import paths
from ..config.http import HttpConfig, split_listen
from ..config.procfile import Procfile
from ..control.handlers import Handlers
from ..control.protocol import Error, StatusReply, StatusRequest, status_json
from ..core.procstat import HeldStats
from ..core.states import State
from ..engine.fleet import Fleet
from ..engine.instance import Instance
from ..health.target import HealthBoard
from ..jobs.tasks import ScheduledTask
from ..output.tail import Follower, last_lines, log_files, prefix
from .feed import UsageFeed
from .hub import EventHub
from .metrics import Exposition, FleetCollector, registry
from .openapi import spec
from .wire import Request, Response, Router, Server, problem
from .writes import Writes, json_response

KEEPALIVE = 15.0
"""An SSE comment this often: proxies keep the stream open and a gone client is noticed."""
FOLLOW_POLL = 0.2
"""How often a followed log is looked at (only while someone follows it; files have no readiness event)."""
MAX_LINES = 10_000


class HttpServer:
    def __init__(self, procfile: Procfile, handlers: Handlers, fleet: Fleet, health: HealthBoard,
                 tasks: Mapping[str, ScheduledTask], bus: Broker, events: EventHub, logger: logging.Logger) -> None:
        self.config: HttpConfig = procfile.http or HttpConfig()
        self._handlers, self._fleet, self._health, self._events, self._log = handlers, fleet, health, events, logger
        self._logs_dir = paths.logs_dir(procfile.state_dir)
        self._stats = HeldStats()
        """Each running instance's /proc/PID/stat, held open for /metrics and the dashboard's usage samples."""
        self._collector = FleetCollector(fleet, health, tasks, bus.totals, handlers.kill_switch, handlers.bridge_status,
                                         handlers.degradation, self._stats)
        self._metrics_text = Exposition(registry(self._collector))
        self._writes = Writes(procfile.http_token_path(), generated=self.config.token_file is None,
                              handlers=handlers, fleet=fleet)
        self._closing = asyncio.Event()
        self._feed = UsageFeed(fleet, events, self._stats)
        self._server = Server(self.router(), logger)
        self.port = 0

    def router(self) -> Router:
        router = Router()
        get = [("/", self._dashboard), ("/health", self._health_all), ("/health/{bot}", self._health_bot),
               ("/status", self._status), ("/metrics", self._metrics), ("/events", self._sse),
               ("/logs/{bot}", self._logs), ("/openapi.json", self._openapi), ("/kill-switch", self._writes.kill_switch_state)]
        for path, fn in get:
            router.add("GET", path, fn)
        self._writes.add_routes(router)
        return router

    async def start(self) -> None:
        self._writes.load_token()
        host, port = split_listen(self.config.listen)
        self.port = await self._server.start(host, port)
        self._log.info("http: listening on %s:%d (writes need the token in %s)", host, self.port, self._writes.token_path)

    async def close(self) -> None:
        """Streams end first (they watch `_closing`), then every connection is closed."""
        self._closing.set()
        await self._feed.close()
        self._events.close()
        await self._server.close()
        self._stats.close()

    # -- reads ---------------------------------------------------------------------------------------------------

    async def _dashboard(self, request: Request) -> Response:
        html = resources.files(__package__).joinpath("dashboard.html").read_bytes()
        return Response(200, html, "text/html", {"Cache-Control": "no-cache"})

    async def _openapi(self, request: Request) -> Response:
        return json_response(200, spec())

    async def _status(self, request: Request) -> Response:
        reply = await self._handlers.handle(StatusRequest(target=request.query.get("target")))
        if isinstance(reply, Error):
            return problem(404, reply.message)
        assert isinstance(reply, StatusReply)
        return json_response(200, status_json(reply))

    def _health_of(self, instances: list[Instance], autostart_only: bool) -> Response:
        """200 when every instance that should run is RUNNING and not unhealthy or DEGRADED, else 503 naming why."""
        problems = []
        for inst in instances:
            bot = self._fleet.bots[inst.bot]
            if autostart_only and not bot.config.autostart:
                continue
            checks = self._health.of(inst)
            status = checks.runner.status() if checks else None
            if inst.state != State.RUNNING:
                why = self._fleet.gate(bot.config) or self._fleet.blocked.get(inst.bot) or (
                    inst.last_exit.describe() if inst.last_exit else "")
            elif checks is not None and checks.degraded:
                why = f"DEGRADED: {checks.degraded}"
            elif status is not None and status.state == "unhealthy":
                why = f"unhealthy: {status.reason}"
            else:
                continue
            problems.append({"bot": inst.bot, "instance": inst.index, "state": inst.state.value, "reason": why})
        ks = self._handlers.kill_switch.state
        body = {"ok": not problems, "instances": len(instances), "problems": problems,
                "kill_switch": {"active": ks.active, "reason": ks.reason, "by": ks.by, "since": ks.since}}
        level = self._handlers.degradation()
        if level is not None:
            body["degradation"] = msgspec.to_builtins(level)
        return json_response(503 if problems else 200, body)

    async def _health_all(self, request: Request) -> Response:
        return self._health_of(self._fleet.instances(), autostart_only=True)

    async def _health_bot(self, request: Request) -> Response:
        bot = self._fleet.bots.get(request.params["bot"])
        if bot is None:
            return problem(404, f"no bot named {request.params['bot']!r}; bots: {', '.join(self._fleet.bots) or 'none'}")
        return self._health_of(bot.instances, autostart_only=False)

    async def _metrics(self, request: Request) -> Response:
        """Text format 0.0.4, which every Prometheus reads (2.x does not know 1.0.0, prometheus-client's default)."""
        return Response(200, self._metrics_text.render(), CONTENT_TYPE_PLAIN_0_0_4)

    async def _sse(self, request: Request) -> Response:
        """Process events (started, exited, backoff, fatal, stopped, health_changed), kill-switch changes and, every
        5 s while anyone listens, CPU and memory of the running instances."""
        return Response(200, self._frames(), "text/event-stream", {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    async def _frames(self) -> AsyncIterator[bytes]:
        queue = self._events.subscribe()
        self._feed.wake()
        try:
            yield b"retry: 1000\n: connected\n\n"
            while not self._closing.is_set():
                try:
                    frame = await asyncio.wait_for(queue.get(), KEEPALIVE)
                except TimeoutError:
                    frame = b": keepalive\n\n"
                if frame is None:
                    break
                yield frame
        finally:
            self._events.unsubscribe(queue)

    async def _logs(self, request: Request) -> Response:
        """The last `lines` lines of a bot's (or one instance's) logs; with follow=1 new lines as they come."""
        name = request.params["bot"]
        bot = self._fleet.bots.get(name)
        if bot is None:
            return problem(404, f"no bot named {name!r}; bots: {', '.join(self._fleet.bots) or 'none'}")
        try:
            lines = int(request.query.get("lines", "100"))
            instance = request.query.get("instance")
            k = int(instance) if instance is not None else None
        except ValueError:
            return problem(400, "lines and instance must be integers")
        if not 0 <= lines <= MAX_LINES:
            return problem(400, f"lines must be between 0 and {MAX_LINES}")
        if k is not None and not 0 <= k < len(bot.instances):
            return problem(400, f"{name} has instances 0..{len(bot.instances) - 1}, not {k}")
        follow = request.query.get("follow", "0")
        if follow not in ("0", "1", "true", "false"):
            return problem(400, "follow must be 0 or 1")
        files = log_files(self._logs_dir, name if k is None else f"{name}:{k}")
        text = "".join(line + "\n" for line in last_lines(files, lines, colour=False)).encode() if lines else b""
        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        body = self._follow(request, text, files) if follow in ("1", "true") else text
        return Response(200, body, "text/plain; charset=utf-8", headers)

    async def _follow(self, request: Request, text: bytes, files: list[Path]) -> AsyncIterator[bytes]:
        """The last lines, then new ones as they are written, until the client leaves or the master stops."""
        followers = [Follower(p) for p in files]
        many = len(followers) > 1
        try:
            yield text
            while not self._closing.is_set():
                out = [prefix(f.path.name[:-4], i, False) + line if many else line
                       for i, f in enumerate(followers) for line in f.read()]
                if out:
                    yield ("\n".join(out) + "\n").encode()
                elif request.gone():
                    break
                try:
                    await asyncio.wait_for(self._closing.wait(), FOLLOW_POLL)
                except TimeoutError:
                    pass
        finally:
            for f in followers:
                f.close()
