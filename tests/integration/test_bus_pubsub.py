"""Pub/sub, wildcards, retained values, request/reply and presence between real processes."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from bus_helpers import run, spawn, start_broker

from supervisor.bus import BusTimeout, Presence, connect
from supervisor.bus import frames as f
from supervisor.core.errors import BusError


def test_pubsub_between_child_processes(tmp_path: Path) -> None:
    async def body() -> None:
        broker = await start_broker(tmp_path)
        sub = await spawn("child_sub.py", broker, "reader", 0, "prices.>", "2")
        assert await sub.line() == "ready"
        pub = await spawn("child_pub.py", broker, "feed", 1)
        assert await pub.line() == "ready"
        pub.send({"topic": "prices.btc", "data": {"bid": 1.5}})
        assert await pub.line() == "ok"
        pub.send({"topic": "volume.btc", "data": 7})
        assert await pub.line() == "ok"
        pub.send({"topic": "prices.eth.usd", "data": [1, 2]})
        assert await pub.line() == "ok"
        first, second = await sub.line(), await sub.line()
        assert first == {"topic": "prices.btc", "data": {"bid": 1.5}, "bot": "feed", "instance": 1}
        assert second["topic"] == "prices.eth.usd" and second["data"] == [1, 2]
        assert await sub.finish() == 0 and await pub.finish() == 0
        stats = broker.stats()
        assert stats[("feed", 1)].msgs_in == 3 and stats[("reader", 0)].msgs_out == 2
        await broker.close()

    run(body())


def test_wildcards_star_and_gt(tmp_path: Path) -> None:
    async def body() -> None:
        broker = await start_broker(tmp_path)
        client = await connect(broker.path, broker.issue_token("a", 0))
        star = client.subscribe("p.*.usd")
        rest = client.subscribe("p.>")
        exact = client.subscribe("p.btc")
        for s in (star, rest, exact):
            await s.ready()
        for topic in ("p.btc.usd", "p.btc", "p", "p.eth.usd.spot", "q.btc.usd"):
            await client.publish(topic, topic)
        await client.flush()
        assert [(await star.get(5)).topic] == ["p.btc.usd"]
        assert [(await rest.get(5)).topic for _ in range(3)] == ["p.btc.usd", "p.btc", "p.eth.usd.spot"]
        assert (await exact.get(5)).topic == "p.btc"
        with pytest.raises(BusTimeout):
            await star.get(0.05)
        await client.close()
        await broker.close()

    run(body())


def test_retained_value_seen_on_connect_and_reconnect(tmp_path: Path) -> None:
    async def body() -> None:
        broker = await start_broker(tmp_path)
        pub = await spawn("child_pub.py", broker, "feed", 0)
        assert await pub.line() == "ready"
        pub.send({"topic": "config.mode", "data": "paper", "retain": True})
        assert await pub.line() == "ok"
        pub.send({"topic": "config.mode", "data": "live", "retain": True})
        assert await pub.line() == "ok"
        for attempt in range(2):
            late = await spawn("child_sub.py", broker, "late", attempt, "config.*", "1")
            assert await late.line() == "ready"
            assert await late.line() == {"topic": "config.mode", "data": "live", "bot": "feed", "instance": 0}
            assert await late.finish() == 0
        pub.send({"topic": "config.mode", "data": None, "retain": True})
        assert await pub.line() == "ok"
        client = await connect(broker.path, broker.admin_token())
        cleared = client.subscribe("config.mode")
        await cleared.ready()
        with pytest.raises(BusTimeout):
            await cleared.get(0.05)
        await client.close()
        assert await pub.finish() == 0
        await broker.close()

    run(body())


def test_request_reply_between_children(tmp_path: Path) -> None:
    async def body() -> None:
        broker = await start_broker(tmp_path)
        rep = await spawn("child_responder.py", broker, "calc", 2, "calc.echo")
        assert await rep.line() == "ready"
        req = await spawn("child_requester.py", broker, "asker", 0, "calc.echo", "5")
        assert await req.line() == "ready"
        req.send({"x": 1})
        assert await req.line() == {"reply": {"echo": {"x": 1}, "by": "calc", "asker": ["asker", 0]}}
        req.send("boom")
        assert await req.line() == {"error": "BusError", "timeout": False}
        assert await req.finish() == 0 and await rep.finish() == 0
        await broker.close()

    run(body())


def test_request_timeout_raises_bus_timeout(tmp_path: Path) -> None:
    async def body() -> None:
        broker = await start_broker(tmp_path)
        slow = await connect(broker.path, broker.issue_token("slow", 0))
        never = asyncio.Event()

        async def hang(_msg: object) -> None:
            await never.wait()

        slow.serve("slow.op", hang)
        await slow.flush()
        asker = await connect(broker.path, broker.issue_token("asker", 0))
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(BusTimeout) as caught:
            await asker.request("slow.op", 1, timeout=0.2)
        assert isinstance(caught.value, TimeoutError) and isinstance(caught.value, BusError)
        assert 0.15 < loop.time() - start < 2
        with pytest.raises(BusError, match="no responder"):
            await asker.request("nobody.home", 1, timeout=5)
        await asker.flush()
        assert not broker.requests.pending, "a cancelled request must not stay in the broker"
        await slow.close()
        await asker.close()
        await broker.close()

    run(body())


def test_presence_and_peers(tmp_path: Path) -> None:
    async def body() -> None:
        broker = await start_broker(tmp_path)
        watcher = await connect(broker.path, broker.issue_token("watch", 0))
        events = watcher.presence()
        assert (await events.get(5)).data == Presence("watch", 0, True)
        other = await connect(broker.path, broker.issue_token("other", 3))
        joined = await events.get(5)
        assert joined.topic == "supctl.presence.other.3" and joined.data == Presence("other", 3, True)
        assert await watcher.peers() == [("other", 3), ("watch", 0)]
        await other.close()
        assert (await events.get(5)).data == Presence("other", 3, False)
        assert await watcher.peers() == [("watch", 0)]
        await watcher.close()
        await broker.close()

    run(body())


def test_master_publish_and_typed_subscription(tmp_path: Path) -> None:
    async def body() -> None:
        broker = await start_broker(tmp_path)
        client = await connect(broker.path, broker.issue_token("bot", 0))
        typed = client.subscribe("supctl.status", type=Presence)
        await typed.ready()
        broker.publish("supctl.status", {"bot": "x", "instance": 1, "online": True})
        msg = await typed.get(5)
        assert msg.data == Presence("x", 1, True) and (msg.bot, msg.instance) == ("supctl", 0)
        assert msg.decode(dict) == {"bot": "x", "instance": 1, "online": True}
        broker.publish("supctl.status", {"bot": 5})
        with pytest.raises(BusTimeout):
            await typed.get(0.1)
        assert typed.invalid == 1
        await client.close()
        await broker.close()

    run(body())


def test_presence_topic_is_safe_for_odd_bot_names(tmp_path: Path) -> None:
    async def body() -> None:
        broker = await start_broker(tmp_path)
        odd = await connect(broker.path, broker.issue_token("odd.name bot", 1))
        event = await odd.presence().get(5)
        assert event.topic == "supctl.presence.odd_name_bot.1"
        assert event.data == Presence("odd.name bot", 1, True)
        await odd.close()
        await broker.close()

    run(body())


@pytest.mark.skipif(sys.platform != "linux", reason="socket permission bits")
def test_socket_is_owner_only_and_removed_on_close(tmp_path: Path) -> None:
    async def body() -> None:
        broker = await start_broker(tmp_path)
        assert (broker.path.stat().st_mode & 0o777) == 0o600
        await broker.close()
        assert not broker.path.exists()

    run(body())


def test_typed_reply_and_missing_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def body() -> None:
        broker = await start_broker(tmp_path)
        server = await connect(broker.path, broker.issue_token("srv", 0))

        async def who(msg: object) -> dict:
            return {"bot": "srv", "instance": 0, "online": True}

        server.serve("who.*", who)
        await server.flush()
        monkeypatch.setenv("SUPCTL_BUS", str(broker.path))
        monkeypatch.setenv("SUPCTL_BUS_TOKEN", broker.issue_token("env", 0))
        client = await connect()
        assert (client.bot, client.instance) == ("env", 0)
        assert await client.request("who.am", None, type=Presence) == Presence("srv", 0, True)
        with pytest.raises(BusError, match="not a"):
            await client.request("who.am", None, type=int)
        monkeypatch.delenv("SUPCTL_BUS")
        with pytest.raises(BusError, match="SUPCTL_BUS"):
            await connect()
        await client.close()
        await server.close()
        await broker.close()

    run(body())


def test_large_message_after_small_ones_fits_frames(tmp_path: Path) -> None:
    async def body() -> None:
        broker = await start_broker(tmp_path)
        client = await connect(broker.path, broker.issue_token("big", 0))
        sub = client.subscribe("blob.>")
        await sub.ready()
        big = b"x" * (f.MAX_FRAME - 1024)
        for _ in range(100):
            client.publish_nowait("blob.small", b"y" * 1000)
        client.publish_nowait("blob.big", big)
        with pytest.raises(BusError, match="limit"):
            client.publish_nowait("blob.big", big + b"x" * 2048)
        got = [await sub.get(5) for _ in range(101)]
        assert got[-1].data == big and all(m.topic == "blob.small" for m in got[:100])
        assert await client.peers() == [("big", 0)], "the connection survived"
        await client.close()
        await broker.close()

    run(body())
