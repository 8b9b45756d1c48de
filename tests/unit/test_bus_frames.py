"""Wire format: every frame round-trips, the splitter handles any chunking, limits hold."""

from __future__ import annotations

import typing

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from supervisor.bus import frames as f

ENC = msgspec.msgpack.Encoder()
DEC = msgspec.msgpack.Decoder(f.Frame)
RAW = msgspec.Raw(ENC.encode({"k": [1, 2.5, "x"]}))

SAMPLES = [
    f.Hello(1, "tok"), f.Welcome("bot", 2, 1, 1024), f.Error("nope", True),
    f.Pub([f.Msg("a.b", RAW), f.Msg("a.c", RAW, True)]), f.Deliver("bot", 1, [f.Msg("a.b", RAW)], 3),
    f.Sub(1, "a.>"), f.SubAck(1), f.Unsub(1), f.Serve("x.*"), f.Unserve("x.*"),
    f.Request(5, "x.y", RAW, "bot", 1), f.Reply(5, RAW, "", "bot", 0), f.Reply(6, error="bad"),
    f.Cancel(5), f.Ping(1), f.Pong(1), f.PeersQuery(2), f.Peers(2, [("a", 0)]),
]


def test_every_frame_type_has_a_sample() -> None:
    assert {type(s) for s in SAMPLES} == set(typing.get_args(f.Frame))


@pytest.mark.parametrize("frame", SAMPLES, ids=lambda s: type(s).__name__)
def test_frame_round_trip(frame: object) -> None:
    packed = f.pack(ENC, frame)
    assert int.from_bytes(packed[:4], "big") == len(packed) - 4
    decoded = DEC.decode(packed[4:])
    assert type(decoded) is type(frame)
    assert ENC.encode(decoded) == ENC.encode(frame)


def test_pack_into_matches_pack() -> None:
    buf = bytearray(b"prefix")
    f.pack_into(ENC, SAMPLES[3], buf)
    assert bytes(buf) == b"prefix" + f.pack(ENC, SAMPLES[3])


@given(cuts=st.lists(st.integers(0, 400), max_size=12))
def test_splitter_any_chunking(cuts: list[int]) -> None:
    stream = b"".join(f.pack(ENC, s) for s in SAMPLES)
    points = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    splitter = f.FrameSplitter(f.MAX_FRAME)
    got = []
    for a, b in zip(points, points[1:], strict=False):
        got += [DEC.decode(body) for body in splitter.feed(stream[a:b])]
    assert [type(g) for g in got] == [type(s) for s in SAMPLES]


def test_splitter_refuses_oversized_header_at_once() -> None:
    splitter = f.FrameSplitter(max_frame=100)
    with pytest.raises(f.FrameError, match="exceeds"):
        splitter.feed((101).to_bytes(4, "big") + b"x")


def test_payload_is_carried_as_raw_bytes() -> None:
    frame = DEC.decode(f.pack(ENC, f.Pub([f.Msg("t", RAW)]))[4:])
    assert isinstance(frame.items[0].data, msgspec.Raw)
    assert bytes(frame.items[0].data) == bytes(RAW)
