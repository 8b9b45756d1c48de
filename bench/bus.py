"""Bus benchmark: supctl broker vs nats-server + nats-py vs two no-broker ceilings.

    .venv/bin/python bench/bus.py [--quick] [--rounds N]

Every role runs in its own process (this file re-invoked with a role name).
Publishers keep at most a window of unacknowledged messages in flight (the
subscribers ack every quarter window over the same bus), so no queue bound is
hit and every count is checked: a lost message fails the run. The VM is noisy,
so supctl, NATS and the two ceilings take turns in N rounds (default 3) and the
table shows medians; latency alternates in LAT_ROUNDS rounds of its own.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from baseline import VENVS, free_port  # noqa: E402

NATS_PY = VENVS / "nats-py"
"""nats-py for the NATS roles, pip-installed here (--target) rather than into the project's venv."""
sys.path.append(str(NATS_PY))

import msgspec  # noqa: E402
import uvloop  # noqa: E402

WINDOW_BYTES = 2 << 20
LAT_ROUNDS = 10
TOPIC = "bench.data"


def window_for(size: int) -> int:
    return max(1024, WINDOW_BYTES // (size + 40))


def emit(obj: object) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


# -- roles: supctl ---------------------------------------------------------------


async def role_broker(path: str, ntokens: str) -> None:
    from supervisor.bus import Broker

    broker = Broker(Path(path))
    await broker.start()
    emit([broker.issue_token("bench", i) for i in range(int(ntokens))])
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    dropped = sum(s.dropped for s in broker.stats().values())
    await broker.close()
    emit({"dropped": dropped})


async def open_client(kind: str, addr: str, token: str):  # noqa: ANN201 - either client
    if kind == "supctl":
        from supervisor.bus import connect

        return await connect(addr, token)
    import nats

    return await nats.connect(addr, pending_size=8 << 20)


async def role_sub(kind: str, addr: str, token: str, n: str, size: str, ident: str) -> None:
    total, every = int(n), window_for(int(size)) // 4
    client = await open_client(kind, addr, token)
    count = 0
    done = asyncio.get_running_loop().create_future()
    if kind == "supctl":
        sub = client.subscribe(TOPIC)
        await sub.ready()
        emit("ready")
        async for _ in sub:
            count += 1
            if count % every == 0 or count == total:
                client.publish_nowait("bench.ack", [int(ident), count])
                if count == total:
                    break
        await client.flush()
        extra = {"dropped": sub.dropped}
    else:

        async def on_msg(_msg: object) -> None:
            nonlocal count
            count += 1
            if count % every == 0 or count == total:
                await client.publish("bench.ack", f"{ident} {count}".encode())
                if count == total:
                    done.set_result(None)

        await client.subscribe(TOPIC, cb=on_msg, pending_msgs_limit=-1, pending_bytes_limit=-1)
        await client.flush()
        emit("ready")
        await done
        await client.flush()
        extra = {"dropped": 0}
    emit({"count": count, "end": time.monotonic(), **extra})
    await client.close()


async def role_pub(kind: str, addr: str, token: str, n: str, size: str, nsubs: str) -> None:
    total, window, subs = int(n), window_for(int(size)), int(nsubs)
    payload = b"x" * int(size)
    client = await open_client(kind, addr, token)
    acked = [0] * subs
    progress = asyncio.Event()
    if kind == "supctl":
        acks = client.subscribe("bench.ack")
        await acks.ready()

        async def read_acks() -> None:
            async for msg in acks:
                acked[msg.data[0]] = msg.data[1]
                progress.set()

        reader = asyncio.get_running_loop().create_task(read_acks())
    else:

        async def on_ack(msg: object) -> None:
            ident, count = msg.data.split()  # type: ignore[attr-defined]
            acked[int(ident)] = int(count)
            progress.set()

        await client.subscribe("bench.ack", cb=on_ack)
        await client.flush()
    emit("ready")
    sys.stdin.readline()
    start = time.monotonic()
    sent = 0
    while sent < total:
        room = window - (sent - min(acked))
        if room <= 0:
            progress.clear()
            await progress.wait()
            continue
        burst = min(room, total - sent, 2000)
        if kind == "supctl":
            publish = client.publish_nowait
            for _ in range(burst):
                publish(TOPIC, payload)
            await client.drain()
        else:
            for _ in range(burst):
                await client.publish(TOPIC, payload)
        sent += burst
        await asyncio.sleep(0)
    while min(acked) < total:
        progress.clear()
        await progress.wait()
    emit({"start": start})
    if kind == "supctl":
        reader.cancel()
    await client.close()


async def role_rep(kind: str, addr: str, token: str) -> None:
    client = await open_client(kind, addr, token)
    if kind == "supctl":

        async def echo(msg: object) -> object:
            return msg.data  # type: ignore[attr-defined]

        client.serve("bench.echo", echo)
        await client.flush()
    else:

        async def on_req(msg: object) -> None:
            await msg.respond(msg.data)  # type: ignore[attr-defined]

        await client.subscribe("bench.echo", cb=on_req)
        await client.flush()
    emit("ready")
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await client.close()


async def role_req(kind: str, addr: str, token: str) -> None:
    """Warm up, then for each stdin line `n` time n sequential requests (us, one JSON list)."""
    client = await open_client(kind, addr, token)
    payload = b"x" * 64
    clock = time.perf_counter
    for _ in range(1000):
        await client.request("bench.echo", payload, timeout=5)
    emit("ready")
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        lat = []
        for _ in range(int(line)):
            t = clock()
            await client.request("bench.echo", payload, timeout=5)
            lat.append(round((clock() - t) * 1e6, 1))
        emit(lat)
    await client.close()


# -- roles: ceiling (no broker) ------------------------------------------------------


class _Msg(msgspec.Struct, array_like=True):
    topic: str
    data: bytes


async def role_ceil_sub(path: str, n: str) -> None:
    """Splits the stream without copying, decodes each frame in one call, hands every message to a loop."""
    total = int(n)
    done = asyncio.get_running_loop().create_future()
    decode = msgspec.msgpack.Decoder(list[_Msg]).decode

    class Proto(asyncio.Protocol):
        pending = b""
        count = 0

        def data_received(self, data: bytes) -> None:
            if self.pending:
                data = self.pending + data
            view, off, end, count = memoryview(data), 0, len(data), self.count
            while end - off >= 4:
                size = int.from_bytes(view[off : off + 4], "big")
                if off + 4 + size > end:
                    break
                for _ in decode(view[off + 4 : off + 4 + size]):
                    count += 1
                off += 4 + size
            self.pending = data[off:] if off < end else b""
            self.count = count
            if count >= total and not done.done():
                done.set_result(count)

    server = await asyncio.get_running_loop().create_unix_server(Proto, path)
    emit("ready")
    count = await done
    emit({"count": count, "end": time.monotonic(), "dropped": 0})
    server.close()


async def role_ceil_pub(path: str, n: str, size: str, batch: str) -> None:
    """One frame (a list of messages) per ~`batch` bytes like supctl's client, or per message when batch is 0."""
    total = int(n)
    payload = b"x" * int(size)
    per_frame = max(1, int(batch) // (int(size) + 16))
    resumed = asyncio.Event()
    resumed.set()
    closed = asyncio.get_running_loop().create_future()

    class Proto(asyncio.Protocol):
        def pause_writing(self) -> None:
            resumed.clear()

        def resume_writing(self) -> None:
            resumed.set()

        def connection_lost(self, exc: Exception | None) -> None:
            closed.set_result(None)

    transport, _ = await asyncio.get_running_loop().create_unix_connection(Proto, path)
    enc = msgspec.msgpack.Encoder()
    emit("ready")
    sys.stdin.readline()
    start = time.monotonic()
    sent = 0
    while sent < total:
        batch = []
        for _ in range(min(per_frame, total - sent)):
            batch.append(_Msg(TOPIC, payload))
        buf = bytearray(4)
        enc.encode_into(batch, buf, 4)
        buf[:4] = (len(buf) - 4).to_bytes(4, "big")
        transport.write(buf)
        sent += len(batch)
        if not resumed.is_set():
            await resumed.wait()
    emit({"start": start})
    transport.close()
    await closed  # the rest of the buffer is written before the loop ends


ROLES = {
    "broker": role_broker, "sub": role_sub, "pub": role_pub, "rep": role_rep, "req": role_req,
    "ceil-sub": role_ceil_sub, "ceil-pub": role_ceil_pub,
}


# -- orchestration ----------------------------------------------------------------


class Proc:
    """One role in its own process, speaking JSON lines on stdout."""

    def __init__(self, *args: str) -> None:
        self.p = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def line(self) -> object:
        raw = self.p.stdout.readline()  # type: ignore[union-attr]
        if not raw:
            raise RuntimeError(f"{self.p.args[2:]} exited with {self.p.wait()}")
        return json.loads(raw)

    def send(self, text: str = "go\n") -> None:
        self.p.stdin.write(text)  # type: ignore[union-attr]
        self.p.stdin.flush()  # type: ignore[union-attr]

    def finish(self) -> None:
        self.p.stdin.close()  # type: ignore[union-attr]


def pump(kind: str, addr: str, tokens: list[str], n: int, size: int, nsubs: int) -> float:
    """Publisher -> subscribers; returns delivered messages per second (all subscribers)."""
    subs = [Proc("sub", kind, addr, tokens[i + 1], str(n), str(size), str(i)) for i in range(nsubs)]
    for s in subs:
        assert s.line() == "ready"
    pub = Proc("pub", kind, addr, tokens[0], str(n), str(size), str(nsubs))
    assert pub.line() == "ready"
    pub.send()
    results = [s.line() for s in subs]
    start = pub.line()["start"]  # type: ignore[index]
    pub.finish()
    for r in results:
        if r["count"] != n or r["dropped"]:  # type: ignore[index]
            raise RuntimeError(f"{kind}: lost messages: {r}")
    end = max(r["end"] for r in results)  # type: ignore[index]
    for p in [pub, *subs]:
        p.p.wait(30)
    return n * nsubs / (end - start)


def latency(targets: dict[str, tuple[str, list[str]]], n: int, rounds: int) -> dict[str, list[tuple[float, float]]]:
    """p50/p99 in seconds per target and round; targets take turns every round so they share the machine's noise."""
    pairs = {}
    for kind, (addr, tokens) in targets.items():
        rep = Proc("rep", kind, addr, tokens[0])
        assert rep.line() == "ready"
        req = Proc("req", kind, addr, tokens[1])
        assert req.line() == "ready"
        pairs[kind] = (rep, req)
    return {kind: [(p50 / 1e6, p99 / 1e6) for p50, p99 in rows] for kind, rows in alternate(pairs, n, rounds).items()}


def alternate(pairs: dict[str, tuple[Proc, Proc]], n: int, rounds: int) -> dict[str, list[tuple[float, float]]]:
    """n requests per (responder, requester) pair in `rounds` rounds, the pairs taking turns; (p50, p99) in us per round.
    Ends both processes of every pair."""
    per = n // rounds
    out: dict[str, list[tuple[float, float]]] = {kind: [] for kind in pairs}
    for _ in range(rounds):
        for kind, (_, req) in pairs.items():
            req.send(f"{per}\n")
            lat = sorted(req.line())  # type: ignore[type-var]
            assert len(lat) == per
            out[kind].append((lat[per // 2], lat[int(per * 0.99)]))
    for rep, req in pairs.values():
        req.finish()
        rep.finish()
        req.p.wait(30)
        rep.p.wait(30)
    return out


def start_supctl(tmp: Path) -> tuple[Proc, str, list[str]]:
    path = str(tmp / "bus.sock")
    broker = Proc("broker", path, "12")
    return broker, path, broker.line()  # type: ignore[return-value]


def stop_supctl(broker: Proc) -> None:
    broker.finish()
    if broker.line()["dropped"]:  # type: ignore[index]
        raise RuntimeError("supctl broker dropped messages")
    broker.p.wait(30)


def ensure_nats() -> str:
    exe = shutil.which("nats-server") or "/usr/sbin/nats-server"
    if not os.path.exists(exe):
        install = ["apt-get", "install", "-y", "nats-server"]
        if subprocess.run(install, stdout=subprocess.DEVNULL).returncode != 0:
            subprocess.run(["apt-get", "update"], check=True, stdout=subprocess.DEVNULL)
            subprocess.run(install, check=True, stdout=subprocess.DEVNULL)
    if not (NATS_PY / "nats").is_dir():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target", str(NATS_PY), "nats-py"], check=True)
    return exe


def start_nats() -> tuple[subprocess.Popen[bytes], str]:
    exe = ensure_nats()
    port = free_port()
    server = subprocess.Popen([exe, "-a", "127.0.0.1", "-p", str(port)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return server, f"nats://127.0.0.1:{port}"
        except OSError:
            if time.monotonic() > deadline:
                os.kill(server.pid, signal.SIGTERM)
                raise
            time.sleep(0.05)


def stop_nats(server: subprocess.Popen[bytes]) -> None:
    os.kill(server.pid, signal.SIGTERM)
    server.wait(10)


def ceiling(tmp: Path, n: int, size: int, batch: int) -> float:
    """The same messages written straight from a publisher to a subscriber: no broker, no acks."""
    path = str(tmp / "ceil.sock")
    sub = Proc("ceil-sub", path, str(n))
    assert sub.line() == "ready"
    pub = Proc("ceil-pub", path, str(n), str(size), str(batch))
    assert pub.line() == "ready"
    pub.send()
    result = sub.line()
    start = pub.line()["start"]  # type: ignore[index]
    assert result["count"] == n  # type: ignore[index]
    pub.p.wait(30)
    sub.p.wait(30)
    os.unlink(path)
    return n / (result["end"] - start)  # type: ignore[index]


def main() -> None:
    quick = "--quick" in sys.argv
    rounds = int(sys.argv[sys.argv.index("--rounds") + 1]) if "--rounds" in sys.argv else 3
    scale = 5 if quick else 1
    cases = [
        ("pub->sub 64 B", 500_000 // scale, 64, 1),
        ("pub->sub 1 KiB", 200_000 // scale, 1024, 1),
        ("fan-out 1->10 64 B", 200_000 // scale, 64, 10),
    ]
    nreq = 20_000 // scale
    sup: dict[str, list[float]] = {name: [] for name, *_ in cases}
    nats: dict[str, list[float]] = {name: [] for name, *_ in cases}
    ceilings = {"1 frame/msg": 0, "batched": 64 << 10}
    ceil = {kind: {name: [] for name, _, _, subs in cases if subs == 1} for kind in ceilings}
    with tempfile.TemporaryDirectory(prefix="supctl-bench-") as tmp:
        broker, path, tokens = start_supctl(Path(tmp))
        server, addr = start_nats()
        try:
            for _ in range(rounds):
                for name, n, size, subs in cases:
                    sup[name].append(pump("supctl", path, tokens, n, size, subs))
                    nats[name].append(pump("nats", addr, ["-"] * 12, n, size, subs))
                    for kind, batch in ceilings.items():
                        if name in ceil[kind]:
                            ceil[kind][name].append(ceiling(Path(tmp), n, size, batch))
            lat = latency({"supctl": (path, tokens), "nats": (addr, ["-"] * 12)}, nreq, LAT_ROUNDS)
        finally:
            stop_nats(server)
            stop_supctl(broker)
    med = statistics.median
    print(f"\nmedian of {rounds} rounds (supctl, NATS and the ceilings alternate in every round)")
    print(f"{'scenario':<22}{'supctl':>14}{'NATS':>14}{'ceil 1/msg':>14}{'ceil batch':>14}{'vs NATS':>10}"
          f"{'vs 1/msg':>10}{'vs batch':>10}")
    for name, *_ in cases:
        s_, n_ = med(sup[name]), med(nats[name])
        cs = [med(ceil[kind][name]) if name in ceil[kind] else None for kind in ceilings]
        print(
            f"{name:<22}{s_:>12,.0f}/s{n_:>12,.0f}/s"
            + "".join(f"{c:>12,.0f}/s" if c else f"{'-':>14}" for c in cs)
            + f"{s_ / n_:>9.2f}x"
            + "".join(f"{s_ / c:>10.0%}" if c else f"{'-':>10}" for c in cs)
        )
    for i, key in enumerate(("p50", "p99")):
        s_, n_ = med(r[i] for r in lat["supctl"]), med(r[i] for r in lat["nats"])
        label = f"req/reply {key}"
        print(f"{label:<22}{s_ * 1e6:>12.0f}us{n_ * 1e6:>12.0f}us{'-':>14}{'-':>14}{s_ / n_:>9.2f}x{'-':>10}{'-':>10}")
    p99s = " ".join(f"{s[1] / n[1]:.2f}" for s, n in zip(lat["supctl"], lat["nats"]))
    print(f"\np99 supctl/NATS per latency round: {p99s}")
    print(f"0 messages lost (every count checked); latency: {nreq} requests each in {LAT_ROUNDS} alternating rounds")
    print(
        "ceilings: publisher -> subscriber over one Unix socket, no broker, each message passed through a\n"
        "Python loop at both ends. '1/msg' writes one length-prefixed msgpack frame per message (the\n"
        "issue's definition); 'batch' packs a ~64 KiB frame per write, as supctl's Pub/Deliver frames do."
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] in ROLES:
        uvloop.run(ROLES[sys.argv[1]](*sys.argv[2:]))
    else:
        main()
