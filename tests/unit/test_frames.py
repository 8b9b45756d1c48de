"""The shared frame codec: the budget of partial-frame bytes is held exactly while a frame is split, and given back."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.core.frames import Budget, FrameError, FrameSplitter, pack

ENC = msgspec.msgpack.Encoder()


@given(bodies=st.lists(st.binary(max_size=300), min_size=1, max_size=8), cuts=st.lists(st.integers(0, 3000), max_size=12))
def test_budget_holds_the_partial_frame_and_nothing_else(bodies: list[bytes], cuts: list[int]) -> None:
    stream = b"".join(pack(ENC, b) for b in bodies)
    points = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    budget = Budget(1 << 20)
    splitter = FrameSplitter(1 << 20, budget)
    got = []
    for a, b in zip(points, points[1:], strict=False):
        got += [msgspec.msgpack.decode(body) for body in splitter.feed(stream[a:b])]
        assert budget.used == splitter.buffered
    assert got == bodies
    assert budget.used == splitter.buffered == 0


def test_a_partial_frame_over_the_shared_budget_is_refused_and_released() -> None:
    budget = Budget(100)
    first, second = FrameSplitter(1000, budget), FrameSplitter(1000, budget)
    first.feed((500).to_bytes(4, "big") + b"x" * 60)
    assert budget.used == 64
    with pytest.raises(FrameError, match="more than 100 bytes"):
        second.feed((500).to_bytes(4, "big") + b"y" * 60)
    assert budget.used == 64 and second.buffered == 0
    first.release()
    assert budget.used == 0
    second.feed((500).to_bytes(4, "big") + b"y" * 60)
    assert budget.used == 64
