"""Durations and sizes as strings with units."""

import pytest

from supervisor.core.units import parse_duration, parse_size


@pytest.mark.parametrize("text, seconds", [("250ms", 0.25), ("10s", 10), ("5m", 300), ("1h", 3600), ("1d", 86400),
                                           ("1.5s", 1.5), (" 2 s ", 2), ("0ms", 0)])
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text, size", [("50MB", 50_000_000), ("1KiB", 1024), ("2GiB", 2 * 1024**3), ("12", 12),
                                        ("1.5kb", 1500), ("64mb", 64_000_000)])
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["", "10", "ten s", "-1s", "1y", "1e3s", 10, None])
def test_bad_durations(bad):
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(bad)


@pytest.mark.parametrize("bad", ["", "MB", "-5MB", "5 parsecs", 5])
def test_bad_sizes(bad):
    with pytest.raises(ValueError, match="expected a size"):
        parse_size(bad)
