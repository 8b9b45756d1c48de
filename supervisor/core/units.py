"""Durations ("250ms", "10s", "5m") and sizes ("50MB") as people write them in a procfile."""

from __future__ import annotations

import re

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3, "tb": 1000**4,
    "kib": 1024, "mib": 1024**2, "gib": 1024**3, "tib": 1024**4,
}


def parse_duration(text: str) -> float:
    """Seconds in a duration string; ValueError with the expected form otherwise."""
    if not isinstance(text, str):
        raise ValueError(f"expected a duration string like '250ms', '10s' or '5m', found {text!r}")
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"expected a duration like '250ms', '10s', '5m', '1h', found {text!r}")
    return float(m.group(1)) * _DURATION_UNITS[m.group(2)]


def parse_size(text: str) -> int:
    """Bytes in a size string (decimal KB/MB/GB, binary KiB/MiB/GiB)."""
    if not isinstance(text, str):
        raise ValueError(f"expected a size string like '500KB' or '50MB', found {text!r}")
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"expected a size like '500KB', '50MB', '1GiB', found {text!r}")
    return int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "B").lower()])
