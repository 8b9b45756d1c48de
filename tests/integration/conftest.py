"""Integration fixtures: `master(text)` runs a real `supctl start -f` on a temp procfile (see harness.py).

Teardown kills the master's group and asserts that no process the test started is left running.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from daemon_helpers import Daemon  # noqa: E402
from harness import Master  # noqa: E402


@pytest.fixture
def master(tmp_path: Path):
    """master(text) -> a started Master on that procfile; teardown asserts nothing it started survives."""
    started: list[Master] = []
    token = uuid.uuid4().hex

    def _start(text: str, preexec=None) -> Master:
        m = Master(tmp_path, text, token)
        started.append(m)
        return m.start(preexec)

    yield _start
    leftovers = [line for m in started for line in m.cleanup()]
    assert not leftovers, "processes left running after the test:\n" + "\n".join(leftovers)


@pytest.fixture
def daemon(tmp_path: Path):
    """A Daemon (a procfile driven through the real `supctl`) whose teardown, like master's, asserts nothing is left."""
    d = Daemon(tmp_path)
    yield d
    leftovers = d.cleanup()
    assert not leftovers, "processes left running after the test:\n" + "\n".join(leftovers)
