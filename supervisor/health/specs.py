"""What the loader hands the runners: validated specs that mint fresh plugin objects per instance."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import msgspec

from ..plugin import EventHook, HealthCheck, Recovery, RecoveryContext, RecoverySkipped
from .contain import in_thread


class RecoverySpec(msgspec.Struct, frozen=True, kw_only=True):
    label: str
    """As written, for logs and history ("restart", "stop + webhook")."""
    create: Callable[[], Recovery]
    timeout: float


class HealthSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One `[[bots.X.health]]` table, validated."""

    index: int
    key: str
    """Dotted key of the table (`bots.api.health[0]`), so runtime reports point at the procfile."""
    check: str
    create: Callable[[], HealthCheck]
    every: float
    timeout: float
    failures: int
    recover: RecoverySpec | None = None
    start_period: float = 0.0
    """Docker's HEALTHCHECK --start-period: failures this soon after spawn do not count; the first pass ends it."""
    initial_delay: float = 0.0
    """The first check runs this long after spawn (at once by default), then every `every`."""
    severity: Literal["error", "warn"] = "error"
    """warn: a failure is reported, never recovered, and leaves the bot healthy."""


class HookSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One event hook table, validated; `events` None means every kind."""

    name: str
    create: Callable[[], EventHook]
    events: frozenset[str] | None
    timeout: float


class InOrder(Recovery):
    """A list of recoveries written where one is expected (`["stop", "webhook"]`): run each in turn.

    A failing part does not skip the rest: the webhook after a failed stop must still go out.
    """

    name = "in_order"

    def __init__(self, parts: list[Recovery]) -> None:
        super().__init__(None)
        self.parts = parts

    async def recover(self, ctx: RecoveryContext, failure: str) -> None:
        errors: list[str] = []
        skipped: list[str] = []
        for part in self.parts:
            try:
                await part.recover(ctx, failure)
            except RecoverySkipped as e:
                skipped.append(str(e))
            except Exception as e:  # noqa: BLE001 -- collected and re-raised below
                errors.append(f"{part.name}: {type(e).__name__}: {e}")
        if errors:
            raise RuntimeError("; ".join(errors))
        if len(skipped) == len(self.parts):
            raise RecoverySkipped("; ".join(skipped))

    def check_passed(self, ctx: RecoveryContext) -> None:
        for part in self.parts:
            part.check_passed(ctx)

    async def close(self) -> None:
        for part in self.parts:
            await part.close()


class Threaded(Recovery):
    """A blocking recovery made awaitable, so composite recoveries can await any step alike."""

    name = "threaded"

    def __init__(self, inner: Recovery) -> None:
        super().__init__(None)
        self.inner = inner
        self.name = inner.name  # type: ignore[misc] -- errors should name the real plugin

    async def recover(self, ctx: RecoveryContext, failure: str) -> None:
        await in_thread(self.inner.recover, ctx, failure)

    def check_passed(self, ctx: RecoveryContext) -> None:
        self.inner.check_passed(ctx)

    async def close(self) -> None:
        await self.inner.close()
