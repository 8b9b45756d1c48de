"""`file_fresh`: the bot touches a heartbeat file; healthy while the file is recent."""

from __future__ import annotations

import os
import time

import msgspec

from supervisor.plugin import CheckContext, Duration, HealthCheck, Result


class FileFreshOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    path: str
    """May contain {bot} and {instance}, e.g. "/run/bots/{bot}-{instance}.beat"."""
    max_age: Duration = Duration("30s")


class FileFresh(HealthCheck):
    name = "file_fresh"
    Options = FileFreshOptions

    async def check(self, ctx: CheckContext) -> Result:
        path = self.options.path.format(bot=ctx.bot, instance=ctx.instance)
        try:
            age = time.time() - os.stat(path).st_mtime
        except FileNotFoundError:
            return Result.fail(f"{path} does not exist yet")
        if age > self.options.max_age:
            return Result.fail(f"{path} is {age:.0f}s old (max {self.options.max_age:g}s)")
        return Result.ok(f"{path} is {age:.1f}s old")
