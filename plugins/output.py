"""The `log_pattern` check: the bot printed something it should not (a Traceback, "FATAL")."""

from __future__ import annotations

import re

import msgspec

from supervisor.plugin import CheckContext, HealthCheck, Result


class LogPatternOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    pattern: str
    lines: int = 200
    """How far back to look each time; should exceed what the bot prints in one `every`."""

    def __post_init__(self) -> None:
        re.compile(self.pattern)
        if self.lines < 1:
            raise ValueError("lines must be >= 1")


def new_lines(before: list[str], now: list[str]) -> list[str]:
    """Lines of `now` not already in `before`: the longest suffix of before that starts now is old."""
    for k in range(min(len(before), len(now)), 0, -1):
        if before[-k:] == now[:k]:
            return now[k:]
    return now


class LogPattern(HealthCheck):
    """Unhealthy when lines printed since the last check match `pattern`.

    Only new lines count, so one old Traceback does not fail every later check (or every
    restarted process); use `failures = 1` to act on the first match.
    """

    name = "log_pattern"
    Options = LogPatternOptions

    def __init__(self, options: LogPatternOptions) -> None:
        super().__init__(options)
        self.regex = re.compile(options.pattern)
        self.seen: list[str] = []

    async def check(self, ctx: CheckContext) -> Result:
        lines = ctx.last_lines(self.options.lines)
        fresh, self.seen = new_lines(self.seen, lines), lines
        hits = [line for line in fresh if self.regex.search(line)]
        if hits:
            more = f" (+{len(hits) - 1} more)" if len(hits) > 1 else ""
            return Result.fail(f"output matched /{self.regex.pattern}/: {hits[0].strip()[:200]}{more}")
        return Result.ok(f"{len(fresh)} new lines, no match")
