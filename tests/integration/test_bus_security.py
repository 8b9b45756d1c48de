"""Identity and robustness: tokens, spoofing, reserved topics, hostile frames."""

from __future__ import annotations

import asyncio
import struct
from pathlib import Path

import msgspec
import pytest
from bus_helpers import run, start_broker
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from supervisor.bus import Broker, connect
from supervisor.bus import frames as f
from supervisor.core.errors import BusError

ENC = msgspec.msgpack.Encoder()
DEC = msgspec.msgpack.Decoder(f.Frame)


async def raw_connect(broker: Broker, token: str | None = None):  # noqa: ANN201 - stream pair
    reader, writer = await asyncio.open_unix_connection(str(broker.path))
    if token is not None:
        writer.write(f.pack(ENC, f.Hello(f.PROTOCOL_VERSION, token)))
        assert isinstance(await read_frame(reader), f.Welcome)
    return reader, writer


async def read_frame(reader: asyncio.StreamReader) -> object:
    (size,) = struct.unpack(">I", await asyncio.wait_for(reader.readexactly(4), 5))
    return DEC.decode(await asyncio.wait_for(reader.readexactly(size), 5))


async def refused(reader: asyncio.StreamReader) -> str:
    """The broker's last word: a fatal Error frame, then EOF."""
    frame = await read_frame(reader)
    while not isinstance(frame, f.Error):
        frame = await read_frame(reader)
    assert frame.fatal
    assert await asyncio.wait_for(reader.read(), 5) == b""
    return frame.message


async def still_routes(broker: Broker) -> None:
    """A fresh pair of clients can still talk: the broker survived."""
    a = await connect(broker.path, broker.admin_token())
    sub = a.subscribe("health.check")
    await sub.ready()
    await a.publish("health.check", 1)
    assert (await sub.get(5)).data == 1
    await a.close()


def test_bad_token_is_refused(tmp_path: Path) -> None:
    async def body() -> None:
        broker = await start_broker(tmp_path)
        good = await connect(broker.path, broker.issue_token("good", 0))
        with pytest.raises(BusError, match="invalid bus token"):
            await connect(broker.path, "not-a-token")
        revoked = broker.issue_token("gone", 0)
        broker.revoke_token("gone", 0)
        with pytest.raises(BusError, match="invalid bus token"):
            await connect(broker.path, revoked)
        assert await good.peers() == [("good", 0)]
        await good.close()
        await broker.close()

    run(body())


def test_reissued_token_replaces_old_and_revoke_disconnects(tmp_path: Path) -> None:
    async def body() -> None:
        broker = await start_broker(tmp_path)
        old = broker.issue_token("bot", 0)
        reader, _ = await raw_connect(broker, old)
        new = broker.issue_token("bot", 0)
        with pytest.raises(BusError):
            await connect(broker.path, old)
        broker.revoke_token("bot", 0)
        assert "revoked" in await refused(reader)
        with pytest.raises(BusError):
            await connect(broker.path, new)
        await broker.close()

    run(body())


def test_protocol_version_mismatch_is_explained(tmp_path: Path) -> None:
    async def body() -> None:
        broker = await start_broker(tmp_path)
        reader, writer = await raw_connect(broker)
        writer.write(f.pack(ENC, f.Hello(f.PROTOCOL_VERSION + 1, broker.admin_token())))
        message = await refused(reader)
        assert "version" in message and str(f.PROTOCOL_VERSION) in message
        await broker.close()

    run(body())


def test_sender_is_stamped_by_broker_not_sender(tmp_path: Path) -> None:
    async def body() -> None:
        broker = await start_broker(tmp_path)
        victim = await connect(broker.path, broker.issue_token("victim", 0))
        sub = victim.subscribe(">")
        await sub.ready()
        reader, writer = await raw_connect(broker, broker.issue_token("evil", 0))
        writer.write(f.pack(ENC, f.Pub([f.Msg("orders.new", msgspec.Raw(ENC.encode("x")))])))
        msg = await sub.get(5)
        while msg.topic != "orders.new":
            msg = await sub.get(5)
        assert (msg.bot, msg.instance) == ("evil", 0)
        writer.write(f.pack(ENC, f.Deliver("victim", 0, [f.Msg("orders.new", msgspec.Raw(ENC.encode("y")))])))
        assert "unexpected frame" in await refused(reader)
        await victim.close()
        await broker.close()

    run(body())


def test_bot_cannot_answer_requests_routed_to_another(tmp_path: Path) -> None:
    async def body() -> None:
        broker = await start_broker(tmp_path)
        honest = await connect(broker.path, broker.issue_token("honest", 0))
        release, entered = asyncio.Event(), asyncio.Event()

        async def answer(_msg: object) -> str:
            entered.set()
            await release.wait()
            return "honest answer"

        honest.serve("ask.me", answer)
        await honest.flush()
        _, evil = await raw_connect(broker, broker.issue_token("evil", 0))
        asker = await connect(broker.path, broker.issue_token("asker", 0))
        pending = asyncio.ensure_future(asker.request("ask.me", 1, timeout=10))
        await asyncio.wait_for(entered.wait(), 10)
        for rid in range(1, 50):
            evil.write(f.pack(ENC, f.Reply(rid, msgspec.Raw(ENC.encode("forged")))))
        await evil.drain()
        spy = await connect(broker.path, broker.issue_token("spy", 0))
        await spy.flush()
        assert not pending.done()
        release.set()
        assert await pending == "honest answer"
        for c in (honest, asker, spy):
            await c.close()
        await broker.close()

    run(body())


def test_reserved_topics_only_for_master(tmp_path: Path) -> None:
    async def body() -> None:
        broker = await start_broker(tmp_path)
        bot = await connect(broker.path, broker.issue_token("bot", 0))
        with pytest.raises(BusError, match="reserved"):
            await bot.publish("supctl.presence.fake.1", {"bot": "fake"})
        reader, writer = await raw_connect(broker, broker.issue_token("raw", 0))
        writer.write(f.pack(ENC, f.Pub([f.Msg("supctl.presence.x.0", msgspec.Raw(b"\xc0"))])))
        assert "reserved" in await refused(reader)
        await bot.close()
        await broker.close()

    run(body())


@pytest.mark.parametrize(
    "frame, reason",
    [
        (struct.pack(">I", f.MAX_FRAME + 1), "exceeds"),
        (f.pack(ENC, [99, "what"]), "malformed"),
        (f.pack(ENC, {"not": "a frame"}), "malformed"),
        (struct.pack(">I", 3) + b"\xc1\xc1\xc1", "malformed"),
        (f.pack(ENC, f.Pub([f.Msg("bad topic", msgspec.Raw(b"\xc0"))])), "bad topic"),
        (f.pack(ENC, f.Sub(1, "a.>.b")), "bad pattern"),
        (f.pack(ENC, f.Welcome("x", 0, 1, 10)), "unexpected"),
    ],
    ids=["oversized", "unknown-tag", "not-an-array", "garbage", "bad-topic", "bad-pattern", "wrong-direction"],
)
def test_bad_frame_closes_only_that_connection(tmp_path: Path, frame: bytes, reason: str) -> None:
    async def body() -> None:
        broker = await start_broker(tmp_path)
        bystander = await connect(broker.path, broker.issue_token("bystander", 0))
        reader, writer = await raw_connect(broker, broker.issue_token("fuzzer", 0))
        writer.write(frame)
        assert reason in await refused(reader)
        await still_routes(broker)
        assert await bystander.peers() == [("bystander", 0)]
        await bystander.close()
        await broker.close()

    run(body())


def test_frames_before_hello_and_silent_clients_are_cut(tmp_path: Path) -> None:
    async def body() -> None:
        broker = await start_broker(tmp_path, hello_timeout=0.2)
        reader, writer = await raw_connect(broker)
        writer.write(f.pack(ENC, f.Ping(1)))
        assert "hello" in await refused(reader)
        silent, _ = await raw_connect(broker)
        assert "no hello" in await refused(silent)
        await broker.close()

    run(body())


msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=20) | st.binary(max_size=20),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=5), inner, max_size=5),
    max_leaves=20,
)
framed_values = st.lists(msgpack_values, min_size=1, max_size=5).map(
    lambda items: f.pack(ENC, items)
)
junk_streams = st.one_of(
    st.binary(min_size=1, max_size=300),
    st.binary(max_size=200).map(lambda body: len(body).to_bytes(4, "big") + body),
    st.tuples(st.integers(1, 17), msgpack_values).map(lambda tv: bytes(f.pack(ENC, [tv[0], tv[1]]))),
    framed_values.map(bytes),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(junk=junk_streams, after_hello=st.booleans())
def test_random_bytes_never_harm_the_broker(tmp_path: Path, junk: bytes, after_hello: bool) -> None:
    async def body() -> None:
        broker = await start_broker(tmp_path, hello_timeout=0.5)
        reader, writer = await raw_connect(broker, broker.issue_token("fuzz", 0) if after_hello else None)
        writer.write(junk)
        await writer.drain()
        await still_routes(broker)
        writer.close()
        await broker.close()

    run(body())
