"""What masters send each other over NATS: subjects under the fleet prefix and msgpack envelopes.

Subjects (F is the fleet, H a host token):
  F.m.TOPIC       published messages; one envelope carries a run of messages on that topic
  F.r.TOPIC       requests (queue group "supctl", so one master answers)
  F.p.H           the roster of bots connected to H's master (presence)
  F.ctl.status    `supctl fleet status`: every master answers
  F.ctl.host.H    `supctl fleet restart|stop|start H:BOT`: H's master answers
Retained values live in the JetStream key-value bucket F_retained, one key per topic.
"""

from __future__ import annotations

import base64
import re
import msgspec
from msgspec import Raw

from supervisor.bus import frames as f

QUEUE = "supctl"
_UNSAFE = re.compile(r"[.*>\s]")
_KV_SAFE = re.compile(r"^[-/_=a-zA-Z0-9]+(\.[-/_=a-zA-Z0-9]+)*$")
_KV_ESCAPE = "_x."


class Envelope(msgspec.Struct, array_like=True, gc=False):
    """Messages one bot published, all on the subject's topic."""

    host: str
    bot: str
    instance: int
    items: list[f.Msg]


class Ask(msgspec.Struct, array_like=True, gc=False):
    host: str
    bot: str
    instance: int
    data: Raw


class Answer(msgspec.Struct, array_like=True, gc=False):
    """A reply; a non-empty `error` means no useful data, exactly as on the local bus."""

    data: Raw = Raw(b"\xc0")
    error: str = ""
    bot: str = ""
    instance: int = 0


class Roster(msgspec.Struct, array_like=True, gc=False):
    """Every bot connected on `host`; `hello` asks the others to send theirs (a master just (re)connected)."""

    host: str
    peers: list[tuple[str, int]]
    hello: bool = False


class FleetAsk(msgspec.Struct, kw_only=True):
    """A control request (`control.StatusRequest` or `control.Action`, as msgpack) and who sent it."""

    origin: str
    request: Raw


class FleetAnswer(msgspec.Struct, kw_only=True):
    host: str
    procfile: str = ""
    version: str = ""
    pid: int = 0
    reply: Raw = Raw(b"\xc0")
    """The control reply (StatusReply, ActionReply or Error) as msgpack."""
    error: str = ""


def token(name: str) -> str:
    """A host name as one subject token."""
    return _UNSAFE.sub("_", name) or "_"


class Subjects:
    def __init__(self, fleet: str) -> None:
        self.fleet = fleet
        self.msg = f"{fleet}.m."
        self.req = f"{fleet}.r."
        self.roster = f"{fleet}.p."
        self.status = f"{fleet}.ctl.status"

    def host(self, host: str) -> str:
        return f"{self.fleet}.ctl.host.{token(host)}"


def kv_key(topic: str) -> str:
    """The bucket key of a topic: itself when NATS allows it as a key, else escaped."""
    if _KV_SAFE.match(topic) and not topic.startswith(_KV_ESCAPE):
        return topic
    return _KV_ESCAPE + base64.urlsafe_b64encode(topic.encode()).decode()


def kv_topic(key: str) -> str:
    if key.startswith(_KV_ESCAPE):
        return base64.urlsafe_b64decode(key[len(_KV_ESCAPE):]).decode()
    return key


def covers(outer: str, inner: str) -> bool:
    """Does pattern `outer` match every topic pattern `inner` can (e.g. `calc.>` covers `calc.*`)?"""
    o, i = outer.split("."), inner.split(".")
    for n, tok in enumerate(o):
        if tok == ">":
            return len(i) > n
        if n >= len(i) or i[n] == ">" or (tok != "*" and (tok != i[n])):
            return False
    return len(o) == len(i)
