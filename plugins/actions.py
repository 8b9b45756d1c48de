"""Recoveries that act through BotControl: `restart`, `stop`, `signal`, `restart_dependents`."""

from __future__ import annotations


import msgspec

from supervisor.plugin import Recovery, RecoveryContext, parse_signal


class Restart(Recovery):
    name = "restart"

    async def recover(self, ctx: RecoveryContext, failure: str) -> None:
        await ctx.control.restart(failure)


class Stop(Recovery):
    name = "stop"

    async def recover(self, ctx: RecoveryContext, failure: str) -> None:
        await ctx.control.stop(failure)


class RestartDependents(Recovery):
    """Restart the bots that depend on this one (their connections to it may be wedged)."""

    name = "restart_dependents"

    async def recover(self, ctx: RecoveryContext, failure: str) -> None:
        await ctx.control.restart_dependents(failure)


class SignalOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    signal: str | int
    """A name ("HUP", "SIGUSR1") or a number."""

    def __post_init__(self) -> None:
        try:
            parse_signal(self.signal)
        except ValueError as e:
            raise ValueError(f"signal {e}") from None  # the leading option name is where the error is reported


class Signal(Recovery):
    """Send a signal to the instance (e.g. USR1 to make it dump state, HUP to reload)."""

    name = "signal"
    Options = SignalOptions

    async def recover(self, ctx: RecoveryContext, failure: str) -> None:
        ctx.control.signal(parse_signal(self.options.signal).value)
