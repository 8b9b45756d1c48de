"""Durations ("250ms", "10s", "5m") and sizes ("500KB", "50MiB") as people write them, parsed once at load.

`Duration` (seconds, a float) and `Size` (bytes, an int) are the one pair of types the procfile and
plugin options share: msgspec builds them through `dec_hook` while it converts a table, so nothing
re-parses a string later. Sizes accept SI units (KB = 1000 bytes, MB = 1000**2, ...) and IEC units
(KiB = 1024 bytes, MiB = 1024**2, ...); sizes are always displayed in IEC units with IEC labels.
"""

from __future__ import annotations

import re
from typing import Any

_DURATION = r"^\s*(\d{1,15}(?:\.\d{1,9})?)\s*(ms|s|m|h|d)\s*$"
"""Patterns compile on their first use (re's cache): `supctl status` formats sizes and never parses one."""
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SIZE = r"(?i)^\s*(\d{1,15}(?:\.\d{1,9})?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?\s*$"
_SIZE_UNITS = {
    "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
}
_IEC = ("B", "KiB", "MiB", "GiB", "TiB")
MAX_DURATION = 366 * 86400.0
"""Longer is a typo: loop timers and `supctl systemd` need finite, sane numbers (config/limits.py is per key)."""


def parse_duration(text: str) -> float:
    """Seconds in a duration string; ValueError with the expected form otherwise."""
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise ValueError(f"expected a duration string like '250ms', '10s' or '5m', found {text!r}")
    if not isinstance(text, str):
        raise ValueError(f"expected a duration string like '250ms', '10s' or '5m', found the number {text!r};"
                         f' write "{text}s"')
    m = re.match(_DURATION, text)
    if not m:
        raise ValueError(f"expected a duration like '250ms', '10s', '5m', '1h', found {text!r}")
    seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2)]
    if seconds > MAX_DURATION:
        raise ValueError("expected a duration of at most 366d")
    return seconds


def parse_size(text: str) -> int:
    """Bytes in a size string (decimal KB/MB/GB, binary KiB/MiB/GiB)."""
    if isinstance(text, bool) or not isinstance(text, str):
        raise ValueError(f"expected a size string like '500KB' or '50MiB', found {text!r}")
    m = re.match(_SIZE, text)
    if not m:
        raise ValueError(f"expected a size like '500KB', '50MB', '1GiB', found {text!r}")
    return int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "B").lower()])


def format_duration(seconds: float) -> str:
    """The shortest exact spelling a person would write: 0.25 -> '250ms', 90 -> '90s', 300 -> '5m'."""
    for unit in ("d", "h", "m", "s"):
        n = seconds / _DURATION_UNITS[unit]
        if n >= 1 and n == int(n):
            return f"{int(n)}{unit}"
    ms = seconds * 1000
    return f"{ms:g}ms" if seconds < 1 else f"{seconds:g}s"


def format_size(n: int) -> str:
    """Bytes in IEC units with IEC labels: 512 -> '512B', 1536 -> '1.5KiB', 500_000 -> '488.3KiB'."""
    value, unit = float(n), 0
    while value >= 1024 and unit < len(_IEC) - 1:
        value, unit = value / 1024, unit + 1
    return f"{int(value)}{_IEC[unit]}" if unit == 0 or value == int(value) else f"{value:.1f}{_IEC[unit]}"


class Duration(float):
    """Seconds, written "250ms", "10s", "5m"; prints the way the procfile wrote it."""

    __slots__ = ("text",)
    text: str

    def __new__(cls, value: str | float) -> Duration:
        self = super().__new__(cls, parse_duration(value) if isinstance(value, str) else value)
        self.text = value.strip() if isinstance(value, str) else format_duration(value)
        return self

    def __str__(self) -> str:
        return self.text

    __repr__ = __str__


class Size(int):
    """Bytes, written "500KB" (SI) or "50MiB" (IEC); prints in IEC units."""

    __slots__ = ()

    def __new__(cls, value: str | int) -> Size:
        return super().__new__(cls, parse_size(value) if isinstance(value, str) else value)

    def __str__(self) -> str:
        return format_size(self)

    __repr__ = __str__


def dec_hook(tp: type, value: Any) -> Any:
    """msgspec's hook for Duration and Size: only a string may become one (a bare 10 is ambiguous)."""
    if tp is Duration:
        parse_duration(value)
        return Duration(value)
    if tp is Size:
        return Size(parse_size(value))
    raise NotImplementedError(f"cannot convert {value!r} to {getattr(tp, '__name__', tp)}")


def enc_hook(obj: Any) -> Any:
    """Duration and Size encode as they are written ("10s", "50MiB")."""
    if isinstance(obj, (Duration, Size)):
        return str(obj)
    raise NotImplementedError(f"cannot encode {type(obj).__name__}")
