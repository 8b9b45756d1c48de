"""Slow subscribers, broker restarts, offline buffering: the bus degrades, it does not stall."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import msgspec
import pytest
from bus_helpers import run, start_broker

from supervisor.bus import Broker, Presence, connect
from supervisor.bus import frames as f
from supervisor.core.errors import BusError

ENC = msgspec.msgpack.Encoder()


def test_slow_subscriber_is_isolated_and_cut_off(tmp_path: Path) -> None:
    async def body() -> None:
        max_queue = 64 << 10
        broker = await start_broker(tmp_path, max_queue=max_queue, max_drops=2000)
        stuck = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stuck.connect(str(broker.path))
        stuck.sendall(f.pack(ENC, f.Hello(f.PROTOCOL_VERSION, broker.issue_token("stuck", 0))))
        stuck.sendall(f.pack(ENC, f.Sub(1, "flood.>")))
        healthy = await connect(broker.path, broker.issue_token("healthy", 0))
        sub = healthy.subscribe("flood.>")
        await sub.ready()
        pub = await connect(broker.path, broker.issue_token("pub", 0))
        await pub.flush()
        stuck_conn = next(c for c in broker.conns if c.identity == ("stuck", 0))
        payload = b"x" * 1024
        total, burst, worst = 6000, 200, 0
        for start in range(0, total, burst):
            for i in range(start, start + burst):
                pub.publish_nowait("flood.data", [i, payload])
            for i in range(start, start + burst):
                assert (await sub.get(5)).data[0] == i
            if stuck_conn.transport is not None and not stuck_conn.transport.is_closing():
                worst = max(worst, stuck_conn.transport.get_write_buffer_size())
        assert sub.dropped == 0
        assert worst <= max_queue + (256 << 10), "outgoing buffer must stay bounded"
        stats = broker.stats()
        assert stats[("stuck", 0)].dropped > 2000
        assert stats[("stuck", 0)].connected is False, "a subscriber past max_drops is disconnected"
        assert stats[("healthy", 0)].msgs_out >= total and stats[("healthy", 0)].dropped == 0
        stuck.close()
        await healthy.close()
        await pub.close()
        await broker.close()

    run(body())


async def wait_online(watch, bot: str) -> None:  # noqa: ANN001 - a Subscription
    while True:
        msg = await watch.get(10)
        if msg.data == Presence(bot, 0, True):
            return


def test_client_reconnects_after_broker_restart(tmp_path: Path) -> None:
    async def body() -> None:
        path = tmp_path / "bus.sock"
        first = await start_broker(tmp_path)
        token = first.issue_token("bot", 0)
        client = await connect(path, token, max_buffer=10)
        updates = client.subscribe("config.>")
        await updates.ready()

        async def ping(msg: object) -> str:
            return "pong"

        client.serve("bot.ping", ping)
        await client.flush()
        await first.close()
        with pytest.raises(BusError):
            await client.request("bot.ping", None, timeout=5)
        for i in range(25):
            await client.publish("offline.n", i)
        assert client.dropped == 15, "the offline buffer keeps the newest max_buffer publishes"

        second = Broker(path)
        second.set_token("bot", 0, token)
        second.publish("config.mode", "live", retain=True)
        await second.start()
        admin = await connect(path, second.admin_token())
        watch = admin.presence()
        seen = admin.subscribe("offline.>")
        await seen.ready()
        await wait_online(watch, "bot")
        got = await updates.get(10)
        assert (got.topic, got.data, got.bot) == ("config.mode", "live", "supctl")
        assert [(await seen.get(10)).data for _ in range(10)] == list(range(15, 25))
        assert await admin.request("bot.ping", None, timeout=5) == "pong"
        await client.close()
        await admin.close()
        await second.close()

    run(body())


def test_reconnect_gives_up_when_token_no_longer_valid(tmp_path: Path) -> None:
    async def body() -> None:
        path = tmp_path / "bus.sock"
        first = await start_broker(tmp_path)
        client = await connect(path, first.issue_token("bot", 0))
        sub = client.subscribe("a.b")
        await sub.ready()
        await first.close()
        second = await start_broker(tmp_path)
        with pytest.raises(BusError, match="invalid bus token"):
            await sub.get(10)
        with pytest.raises(BusError, match="invalid bus token"):
            await client.publish("a.b", 1)
        await client.close()
        await second.close()

    run(body())


def test_requests_to_vanished_responder_fail_fast(tmp_path: Path) -> None:
    async def body() -> None:
        broker = await start_broker(tmp_path)
        responder = await connect(broker.path, broker.issue_token("resp", 0))
        never, entered = asyncio.Event(), asyncio.Event()

        async def hang(_msg: object) -> None:
            entered.set()
            await never.wait()

        responder.serve("work.>", hang)
        await responder.flush()
        asker = await connect(broker.path, broker.issue_token("asker", 0))
        pending = asyncio.ensure_future(asker.request("work.one", 1, timeout=10))
        await asyncio.wait_for(entered.wait(), 10)
        await responder.close()
        with pytest.raises(BusError, match="responder disconnected"):
            await pending
        await asker.close()
        await broker.close()

    run(body())
