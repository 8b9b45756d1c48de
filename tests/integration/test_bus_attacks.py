"""One bot against the rest, on a real broker and real sockets: deep frames, partial frames, silent
connections, subscription floods, retained floods, connection floods, hijacked serves."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest
from bus_helpers import run, start_broker
from test_bus_security import raw_connect, refused

from supervisor.bus import connect
from supervisor.bus import frames as f
from supervisor.bus.conn import Connection
from supervisor.core.errors import BusError

ENC = msgspec.msgpack.Encoder()
DEC = msgspec.msgpack.Decoder(f.Frame)
DEEP_PUB = b"\x92\x04\x91\x93\xa1t" + b"\x91" * 5000 + b"\xc0\xc2"
"""A Pub whose one message carries data nested 5,000 arrays deep: msgspec recurses even to skip it as Raw."""


def frame(body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + body


def test_deeply_nested_bus_frame_gets_an_error_frame(tmp_path: Path) -> None:
    async def body() -> None:
        broker = await start_broker(tmp_path)
        reader, writer = await raw_connect(broker, broker.issue_token("deep", 0))
        writer.write(frame(DEEP_PUB))
        assert "malformed frame" in await refused(reader)
        async with await connect(broker.path, broker.issue_token("ok", 0)) as ok:
            assert await ok.peers() == [("ok", 0)]
        await broker.close()

    run(body())


async def until(check: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    """Wait on the broker's own state, which only the loop changes: one check per loop turn, with a deadline."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


def test_partial_frames_are_capped_before_hello_and_in_total(tmp_path: Path) -> None:
    async def body() -> None:
        broker = await start_broker(tmp_path, max_buffered=4 << 20)
        stranger, writer = await raw_connect(broker)
        writer.write((1 << 20).to_bytes(4, "big") + b"\0" * 100)
        assert "exceeds the limit of 4096" in await refused(stranger)
        partial = (900 << 10) + 4
        writers = []
        for i in range(8):  # 8 partial frames of 900 KiB: at most 4 fit in 4 MiB
            _, writer = await raw_connect(broker, broker.issue_token("big", i))
            writer.write(f.MAX_FRAME.to_bytes(4, "big") + b"\x91" * (900 << 10))
            writers.append(writer)

        def held() -> list[Connection]:
            return [c for c in broker.conns if c.identity and c.identity[0] == "big"]

        await until(lambda: all(c.splitter.buffered == partial for c in held()) and len(held()) <= 4, "partials held")
        assert broker.budget.used == partial * len(held()) <= broker.budget.limit
        for writer in writers:
            writer.close()
        await until(lambda: broker.budget.used == 0, "the budget given back")
        async with await connect(broker.path, broker.issue_token("after", 0)) as after:
            await after.publish("x.y", b"\0" * (900 << 10))  # a big frame fits again
            await after.flush()
        await broker.close()

    run(body())


def test_1030_connections_without_hello_do_not_lock_bots_out(tmp_path: Path) -> None:
    async def body() -> None:
        broker = await start_broker(tmp_path)
        silent = [await raw_connect(broker) for _ in range(1030)]
        async with await connect(broker.path, broker.issue_token("bot", 0)) as bot:
            assert await bot.peers() == [("bot", 0)]
        assert len(broker.limits.strangers) <= broker.limits.max_strangers
        reader, _ = silent[-1]
        start = time.monotonic()
        assert "no hello in time" in await refused(reader)
        assert time.monotonic() - start < broker.hello_timeout + 2
        for _, writer in silent:
            writer.close()
        await broker.close()

    run(body(), timeout=60)


def test_200000_subscriptions_on_one_connection_are_refused_past_the_bot_limit(tmp_path: Path) -> None:
    async def body() -> None:
        broker = await start_broker(tmp_path)
        reader, writer = await raw_connect(broker, broker.issue_token("greedy", 0))
        splitter = f.FrameSplitter(f.MAX_FRAME)
        pongs: asyncio.Queue[int] = asyncio.Queue()

        async def drain() -> None:  # the replies are read, more slowly than the broker writes them
            while chunk := await reader.read(1 << 16):
                for got in map(DEC.decode, splitter.feed(chunk)):
                    if isinstance(got, f.Pong):
                        pongs.put_nowait(got.n)

        reading = asyncio.ensure_future(drain())
        for start in range(0, 200_000, 10_000):
            writer.write(b"".join(f.pack(ENC, f.Sub(i + 1, f"t.{i}")) for i in range(start, start + 10_000)))
            await writer.drain()
        for n in range(60):  # a ping while its replies back up is dropped like any reply: ask again
            writer.write(f.pack(ENC, f.Ping(n)))
            try:
                await asyncio.wait_for(pongs.get(), 1)
                break
            except TimeoutError:
                pass
        else:
            pytest.fail("no pong: the broker stopped serving the connection")
        assert broker.stats()[("greedy", 0)].refused == 190_000
        assert broker.limits.held(("greedy", 0)) == 10_000
        writer.close()
        reading.cancel()
        await broker.close()

    run(body(), timeout=120)


def test_17_connections_of_one_bot_are_refused_past_its_limit(tmp_path: Path) -> None:
    async def body() -> None:
        broker = await start_broker(tmp_path)
        token = broker.issue_token("many", 0)
        conns = [await connect(broker.path, token) for _ in range(16)]
        with pytest.raises(BusError, match="16 bus connections already"):
            await connect(broker.path, token)
        assert broker.stats()[("many", 0)].refused == 1
        for c in conns:
            await c.close()
        await broker.close()

    run(body())


def test_10001_retained_topics_evict_nobody_else(tmp_path: Path) -> None:
    async def body() -> None:
        broker = await start_broker(tmp_path)
        async with await connect(broker.path, broker.issue_token("honest", 0)) as honest:
            await honest.publish("honest.price", 1, retain=True)
            await honest.flush()
            async with await connect(broker.path, broker.issue_token("flood", 0)) as flood:
                for i in range(10_001):
                    flood.publish_nowait(f"flood.{i}", i, retain=True)
                    if i % 1000 == 0:
                        await flood.drain()
                await flood.flush()
                async with await connect(broker.path, broker.issue_token("late", 0)) as late:
                    sub = late.subscribe("honest.>")
                    assert (await sub.get(5)).data == 1
                    peers = late.presence()
                    seen = {(await peers.get(5)).data.bot for _ in range(3)}
                    assert seen == {"honest", "flood", "late"}
                    kept = late.subscribe("flood.>")
                    await kept.ready()
                    assert len(broker.retained) == 1 + 1_000 + 3
                assert broker.stats()[("flood", 0)].refused >= 1
        await broker.close()

    run(body(), timeout=60)


def test_2000_subs_with_10000_retained_topics_do_not_block_the_loop(tmp_path: Path) -> None:
    async def body() -> None:
        broker = await start_broker(tmp_path)
        loop = asyncio.get_running_loop()
        for b in range(10):
            async with await connect(broker.path, broker.issue_token(f"pub{b}", 0)) as pub:
                for i in range(999):  # 9,990 in all: under the store's 10,000 with the presence values too
                    pub.publish_nowait(f"r.{b}.{i}", i, retain=True)
                await pub.flush()
        assert sum(1 for _ in broker.retained.matching("r.>")) == 9_990
        gaps = [0.0]
        last = time.monotonic()

        def tick() -> None:
            nonlocal last, ticker
            now = time.monotonic()
            gaps.append(now - last)
            last = now
            ticker = loop.call_later(0.005, tick)

        ticker = loop.call_later(0.005, tick)
        reader, writer = await raw_connect(broker, broker.issue_token("attacker", 0))
        writer.write(b"".join(f.pack(ENC, f.Sub(i + 1, ">")) for i in range(2000)))
        attacker = next(c for c in broker.conns if c.identity == ("attacker", 0))
        await until(lambda: attacker not in broker.conns, "the attacker cut off as a slow consumer", 60)
        ticker.cancel()
        assert max(gaps) < 1.0, f"the loop was blocked for {max(gaps):.2f}s"
        writer.close()
        await broker.close()

    run(body(), timeout=90)


def test_a_bot_cannot_serve_or_publish_outside_its_allow_lists(tmp_path: Path) -> None:
    async def body() -> None:
        broker = await start_broker(tmp_path)
        broker.permit("feed", serve=["feed.>"], publish=["feed.>"])
        broker.permit("evil", serve=["evil.>"], publish=["evil.>"], subscribe=["evil.>", "supctl.presence.>"])
        feed = await connect(broker.path, broker.issue_token("feed", 0))
        evil = await connect(broker.path, broker.issue_token("evil", 0))
        asker = await connect(broker.path, broker.issue_token("asker", 0))

        async def price(msg: object) -> str:
            return "real"

        async def fake(msg: object) -> str:
            return "hijacked"

        feed.serve("feed.price", price)
        evil.serve("feed.price", fake)
        await feed.flush()
        await evil.flush()
        answers = [await asker.request("feed.price", None) for _ in range(40)]
        assert answers == ["real"] * 40
        spy = evil.subscribe("feed.>")
        with pytest.raises(BusError, match="may not subscribe 'feed.>'"):
            await spy.ready()
        watch = asker.subscribe("feed.>")
        await watch.ready()
        evil.publish_nowait("feed.price", "forged")
        evil.publish_nowait("evil.ok", 1)
        await evil.flush()
        await feed.publish("feed.price", "genuine")
        assert (await watch.get(5)).data == "genuine"
        with pytest.raises(BusError, match="may not publish to 'feed.x'"):
            await evil.request("feed.x", None)
        assert broker.stats()[("evil", 0)].refused == 3  # the serve, the subscription, the publish
        for c in (feed, evil, asker):
            await c.close()
        await broker.close()

    run(body())
