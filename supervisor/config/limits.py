"""Every number a procfile can hold has a range, checked at validation (docs/security.md lists them).

Past these, a value is a typo or an attack, not a configuration: 10^8 instances made validate run for
20 s in 2.6 GB, `backups = 3000000` froze the master at each rotation, and a 400-digit start_grace
never elapsed. Durations are also capped for everything else (health checks, tasks) in core/units.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from ..core.errors import ConfigError
from ..core.units import format_duration, format_size


class Range(NamedTuple):
    low: float
    high: float
    kind: str = "number"
    """How values print in a message: number, duration (seconds) or size (bytes)."""

    def show(self, value: float) -> str:
        if self.kind == "duration":
            return format_duration(value)
        if self.kind == "size":
            return format_size(int(value))
        return f"{value:,}" if isinstance(value, int) else f"{value:g}"


DAY = 86400.0
BOT: dict[str, Range] = {
    "instances": Range(1, 1000),
    "start_grace": Range(0, DAY, "duration"),
    "stop_timeout": Range(0, DAY, "duration"),
    "start_timeout": Range(0, 7 * DAY, "duration"),
    "backoff.initial": Range(0, DAY, "duration"),
    "backoff.max": Range(0, DAY, "duration"),
    "backoff.factor": Range(1, 100),
    "backoff.jitter": Range(0, 1),
    "restart_limit.count": Range(0, 1_000_000),
    "restart_limit.window": Range(0, 30 * DAY, "duration"),
}
"""Per bot (and under [defaults]), by dotted key."""
TASK: dict[str, Range] = {
    "stop_timeout": Range(0, DAY, "duration"),
}
"""Per [tasks.NAME]."""
LOG: dict[str, Range] = {
    "max_size": Range(1024, 1024**4, "size"),
    "backups": Range(0, 100),
}
"""[supervisor] log and each bot's log."""
BUS: dict[str, Range] = {
    "checkpoints": Range(1, 1000),
}
"""[bus]: checkpoints kept per instance."""
SUCCESS_CODE = Range(0, 255)
MAX_SUCCESS_CODES = 256
MAX_INSTANCES = 10_000
"""Instances of all bots of one procfile together (each costs a process, two pipes and a pidfd)."""
MAX_DEPTH = 32
"""Arrays and tables nested deeper than this are refused; a procfile needs four or five levels."""


def check_ranges(file: str, key: str, record: Any, ranges: dict[str, Range], errors: list[ConfigError]) -> None:
    """One error per value outside its range, naming `key.field`, the range and what was found."""
    for dotted, r in ranges.items():
        value: Any = record
        for part in dotted.split("."):
            value = getattr(value, part)
        if not r.low <= value <= r.high:
            errors.append(ConfigError(file, f"{key}.{dotted}", f"expected {r.show(r.low)} to {r.show(r.high)}, found {r.show(value)}"))


def check_success_codes(file: str, key: str, codes: list[int], errors: list[ConfigError]) -> None:
    if len(codes) > MAX_SUCCESS_CODES:
        errors.append(ConfigError(file, f"{key}.success_codes", f"expected at most {MAX_SUCCESS_CODES} codes, found {len(codes)}"))
    for i, code in enumerate(codes[:MAX_SUCCESS_CODES]):
        if not SUCCESS_CODE.low <= code <= SUCCESS_CODE.high:
            errors.append(ConfigError(file, f"{key}.success_codes[{i}]", f"expected an exit code 0 to 255, found {code}"))


def too_deep(raw: object) -> str | None:
    """The dotted key of the first value nested deeper than MAX_DEPTH, or None (iterative: no recursion)."""
    stack: list[tuple[object, str, int]] = [(raw, "", 0)]
    while stack:
        value, key, depth = stack.pop()
        if depth > MAX_DEPTH:
            return key
        items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
        for k, v in items:
            if isinstance(v, (dict, list)):
                stack.append((v, f"{key}[{k}]" if isinstance(k, int) else f"{key}.{k}" if key else str(k), depth + 1))
    return None
