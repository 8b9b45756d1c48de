"""Bus wire format: msgpack bodies in the shared length-prefixed codec (core/frames), one Struct per frame.

Frames are array-like tagged Structs so they stay small and decode in one C call.
Payloads travel as `msgspec.Raw`: the broker routes their bytes and never decodes them.
"""

from __future__ import annotations

from typing import Union

import msgspec
from msgspec import Raw

from supervisor.core.frames import Budget, FrameError, FrameSplitter, pack, pack_into  # noqa: F401 - the shared codec

PROTOCOL_VERSION = 1
ADMIN = ("supctl", 0)
"""The master's own identity on the bus."""
MAX_FRAME = 1 << 20
"""Largest frame body, in bytes, either side accepts by default."""


class _Frame(msgspec.Struct, array_like=True, tag=True, gc=False):
    pass


class Hello(_Frame, tag=1):
    """First client frame; the token alone decides who the client is."""

    version: int
    token: str


class Welcome(_Frame, tag=2):
    bot: str
    instance: int
    version: int
    max_frame: int


class Error(_Frame, tag=3):
    """Something the peer sent was refused; `fatal` means the connection is closing."""

    message: str
    fatal: bool = False


class Msg(msgspec.Struct, array_like=True, gc=False):
    """One published message inside a Pub or Deliver frame."""

    topic: str
    data: Raw
    retain: bool = False


class Pub(_Frame, tag=4):
    """Client -> broker: a batch of messages, decoded by the broker in one call."""

    items: list[Msg]


class Deliver(_Frame, tag=5):
    """Broker -> subscriber: messages from one sender, stamped by the broker.

    Encoded once and written to every subscriber it matches. `sid` is 0 for live
    traffic and names one subscription for a retained replay. `host` is empty for
    a sender on this master and names the sender's host for one bridged from NATS.
    """

    bot: str
    instance: int
    items: list[Msg]
    sid: int = 0
    host: str = ""


class Sub(_Frame, tag=6):
    sid: int
    pattern: str


class SubAck(_Frame, tag=7):
    """Sent after the retained replay for `sid`: the subscription is live, or refused when `error` is set."""

    sid: int
    error: str = ""


class Unsub(_Frame, tag=8):
    sid: int


class Serve(_Frame, tag=9):
    pattern: str


class Unserve(_Frame, tag=10):
    pattern: str


class Request(_Frame, tag=11):
    """Client -> broker (sender fields empty), then broker -> responder (stamped)."""

    rid: int
    topic: str
    data: Raw
    bot: str = ""
    instance: int = 0
    host: str = ""


class Reply(_Frame, tag=12):
    """Responder -> broker -> requester; a non-empty `error` means no useful data."""

    rid: int
    data: Raw = Raw(b"\xc0")
    error: str = ""
    bot: str = ""
    instance: int = 0


class Cancel(_Frame, tag=13):
    """The requester gave up on `rid`; the broker forgets it."""

    rid: int


class Ping(_Frame, tag=14):
    n: int


class Pong(_Frame, tag=15):
    n: int


class PeersQuery(_Frame, tag=16):
    n: int


class Peers(_Frame, tag=17):
    """`peers` are on this master; `remote` on other hosts, as (bot, instance, host), seen through NATS."""

    n: int
    peers: list[tuple[str, int]]
    remote: list[tuple[str, int, str]] = []


Frame = Union[
    Hello, Welcome, Error, Pub, Deliver, Sub, SubAck, Unsub, Serve, Unserve,
    Request, Reply, Cancel, Ping, Pong, PeersQuery, Peers,
]


class Presence(msgspec.Struct, frozen=True, omit_defaults=True):
    """Payload on `supctl.presence.<bot>.<instance>` (`.<host>` for a remote peer): retained while online."""

    bot: str
    instance: int
    online: bool
    host: str = ""


class BusTotals(msgspec.Struct):
    """The whole bus's counters for /metrics: summed in place, no BusStats copied per instance per scrape."""

    connections: int = 0
    msgs_in: int = 0
    msgs_out: int = 0
    dropped: int = 0


class BusStats(msgspec.Struct):
    """Per-identity counters the master shows in `supctl status`."""

    connected: bool = False
    msgs_in: int = 0
    msgs_out: int = 0
    dropped: int = 0
    refused: int = 0
    """Connections, patterns, publishes and retained values refused by a limit or an allow list."""
