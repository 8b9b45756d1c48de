"""The HTTP server inside the master, on the master's own event loop (aiohttp).

Reads go through the same control handlers as `supctl` (GET /status is `supctl status --json`), writes too,
after the bearer token; nothing here changes the fleet by itself.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from importlib import resources
from pathlib import Path

import msgspec
from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from ..bus.broker import Broker
from ..config import paths
from ..config.http import HttpConfig, split_listen
from ..config.procfile import Procfile
from ..control.handlers import Handlers
from ..control.protocol import Error, StatusReply, StatusRequest, status_json
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
from .writes import Writes, json_response, problem

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
        self._metrics_text = Exposition(registry(FleetCollector(fleet, health, tasks, bus.stats, handlers.kill_switch,
                                                                handlers.bridge_status, handlers.degradation)))
        self._writes = Writes(procfile.http_token_path(), generated=self.config.token_file is None,
                              handlers=handlers, fleet=fleet)
        self._closing = asyncio.Event()
        self._feed = UsageFeed(fleet, events)
        self._runner: web.AppRunner | None = None
        self.port = 0

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024, middlewares=[self._errors])
        get = [("/", self._dashboard), ("/health", self._health_all), ("/health/{bot}", self._health_bot),
               ("/status", self._status), ("/metrics", self._metrics), ("/events", self._sse),
               ("/logs/{bot}", self._logs), ("/openapi.json", self._openapi), ("/kill-switch", self._writes.kill_switch_state)]
        app.router.add_routes([web.get(path, fn, allow_head=False) for path, fn in get])
        app.router.add_routes(self._writes.routes())
        return app

    async def start(self) -> None:
        self._writes.load_token()
        host, port = split_listen(self.config.listen)
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        self.port = self._runner.addresses[0][1]  # the bound port, when listen asked for port 0
        self._log.info("http: listening on %s:%d (writes need the token in %s)", host, self.port, self._writes.token_path)

    async def close(self) -> None:
        self._closing.set()
        await self._feed.close()
        self._events.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _errors(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        """Unknown paths and methods as JSON problems; a bug in a handler is logged and answered, never fatal."""
        try:
            return await handler(request)
        except web.HTTPException as e:
            if e.status >= 400 and e.content_type != "application/json":
                return problem(e.status, f"{request.method} {request.path}: {e.reason}", headers=e.headers)
            raise
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception:
            self._log.exception("http: %s %s failed", request.method, request.path_qs)
            return problem(500, f"{request.method} {request.path}: internal error (see the master log)")

    # -- reads ---------------------------------------------------------------------------------------------------

    async def _dashboard(self, request: web.Request) -> web.Response:
        html = resources.files(__package__).joinpath("dashboard.html").read_bytes()
        return web.Response(body=html, content_type="text/html", headers={"Cache-Control": "no-cache"})

    async def _openapi(self, request: web.Request) -> web.Response:
        return json_response(200, spec())

    async def _status(self, request: web.Request) -> web.Response:
        reply = await self._handlers.handle(StatusRequest(target=request.query.get("target")))
        if isinstance(reply, Error):
            return problem(404, reply.message)
        assert isinstance(reply, StatusReply)
        return json_response(200, status_json(reply))

    def _health_of(self, instances: list[Instance], autostart_only: bool) -> web.Response:
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

    async def _health_all(self, request: web.Request) -> web.Response:
        return self._health_of(self._fleet.instances(), autostart_only=True)

    async def _health_bot(self, request: web.Request) -> web.Response:
        bot = self._fleet.bots.get(request.match_info["bot"])
        if bot is None:
            return problem(404, f"no bot named {request.match_info['bot']!r}; bots: {', '.join(self._fleet.bots) or 'none'}")
        return self._health_of(bot.instances, autostart_only=False)

    async def _metrics(self, request: web.Request) -> web.Response:
        """Text format 0.0.4, which every Prometheus reads (2.x does not know 1.0.0, prometheus-client's default)."""
        return web.Response(body=self._metrics_text.render(), headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})

    async def _sse(self, request: web.Request) -> web.StreamResponse:
        """Process events (started, exited, backoff, fatal, stopped, health_changed), kill-switch changes and, every
        5 s while anyone listens, CPU and memory of the running instances."""
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
        await resp.prepare(request)
        queue = self._events.subscribe()
        self._feed.wake()
        try:
            await resp.write(b"retry: 1000\n: connected\n\n")
            while not self._closing.is_set():
                try:
                    frame = await asyncio.wait_for(queue.get(), KEEPALIVE)
                except TimeoutError:
                    frame = b": keepalive\n\n"
                if frame is None:
                    break
                await resp.write(frame)
        except (ConnectionResetError, RuntimeError):
            pass
        finally:
            self._events.unsubscribe(queue)
        return resp

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        """The last `lines` lines of a bot's (or one instance's) logs; with follow=1 new lines as they come."""
        name = request.match_info["bot"]
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
        resp = web.StreamResponse(headers={"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-cache",
                                           "X-Accel-Buffering": "no"})
        await resp.prepare(request)
        text = "".join(line + "\n" for line in last_lines(files, lines, colour=False)) if lines else ""
        await resp.write(text.encode())
        if follow in ("1", "true"):
            await self._follow(request, resp, files)
        await resp.write_eof()
        return resp

    async def _follow(self, request: web.Request, resp: web.StreamResponse, files: list[Path]) -> None:
        followers = [Follower(p) for p in files]
        many = len(followers) > 1
        try:
            while not self._closing.is_set():
                out = [prefix(f.path.name[:-4], i, False) + line if many else line
                       for i, f in enumerate(followers) for line in f.read()]
                if out:
                    await resp.write(("\n".join(out) + "\n").encode())
                elif request.transport is None or request.transport.is_closing():
                    break
                try:
                    await asyncio.wait_for(self._closing.wait(), FOLLOW_POLL)
                except TimeoutError:
                    pass
        except (ConnectionResetError, RuntimeError):
            pass
        finally:
            for f in followers:
                f.close()
