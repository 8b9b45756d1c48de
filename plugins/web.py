"""HTTP plugins: the `http` check and the `webhook` recovery (httpx)."""

from __future__ import annotations

import asyncio
import re
import time

import httpx
import msgspec

from supervisor.plugin import CheckContext, Duration, HealthCheck, Recovery, RecoveryContext, Result, backoff_delay


class HttpOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    url: str
    status: int = 200
    body: str | None = None
    """A regex that must be found in the response body."""

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, found {self.url!r}")
        if self.body is not None:
            re.compile(self.body)


class HttpCheck(HealthCheck):
    """GET url; healthy on the expected status (and body match). No redirects, no proxies from env."""

    name = "http"
    Options = HttpOptions

    def __init__(self, options: HttpOptions) -> None:
        super().__init__(options)
        self.body = re.compile(options.body) if options.body is not None else None
        self.client: httpx.AsyncClient | None = None

    async def check(self, ctx: CheckContext) -> Result:
        if self.client is None:  # created lazily: it binds to the running loop
            self.client = httpx.AsyncClient(trust_env=False, follow_redirects=False, timeout=None)
        try:
            response = await self.client.get(self.options.url)
        except httpx.HTTPError as e:
            return Result.fail(f"GET {self.options.url}: {type(e).__name__}: {e}".rstrip(": "))
        if response.status_code != self.options.status:
            return Result.fail(f"status {response.status_code}, expected {self.options.status}")
        if self.body is not None and not self.body.search(response.text):
            return Result.fail(f"body does not match /{self.body.pattern}/")
        return Result.ok(f"status {response.status_code}")

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()


class WebhookOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    url: str
    retries: int = 3
    backoff: Duration = Duration("1s")
    """Delay before the first retry; doubles each time."""
    timeout: Duration = Duration("5s")

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, found {self.url!r}")
        if self.retries < 0:
            raise ValueError("retries must be >= 0")


class Webhook(Recovery):
    """POST a JSON event; delivery runs in the background so a slow receiver never holds up recovery."""

    name = "webhook"
    Options = WebhookOptions

    def __init__(self, options: WebhookOptions) -> None:
        super().__init__(options)
        self.pending: set[asyncio.Task[bool]] = set()

    async def recover(self, ctx: RecoveryContext, failure: str) -> None:
        event = {"event": "recovery", "bot": ctx.bot, "instance": ctx.instance, "pid": ctx.pid,
                 "state": ctx.state, "reason": failure, "time": time.time()}
        task = asyncio.create_task(self.deliver(event, ctx))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def deliver(self, event: dict[str, object], ctx: RecoveryContext) -> bool:
        """POST with retries; True once a 2xx came back."""
        async with httpx.AsyncClient(timeout=float(self.options.timeout)) as client:
            for attempt in range(self.options.retries + 1):
                try:
                    response = await client.post(self.options.url, json=event)
                    if response.is_success:
                        return True
                    problem = f"status {response.status_code}"
                except httpx.HTTPError as e:
                    problem = f"{type(e).__name__}: {e}"
                ctx.logger.warning("webhook %s attempt %d failed: %s", self.options.url, attempt + 1, problem)
                if attempt < self.options.retries:
                    await asyncio.sleep(backoff_delay(attempt, float(self.options.backoff), 2.0, float("inf"), 0.0))
        ctx.logger.error("webhook %s gave up after %d attempts", self.options.url, self.options.retries + 1)
        return False

    async def close(self) -> None:
        """Let deliveries in flight finish; they are bounded by retries x timeout."""
        if self.pending:
            await asyncio.gather(*self.pending, return_exceptions=True)
