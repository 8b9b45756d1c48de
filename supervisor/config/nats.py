"""`[bus.nats]`: how a master's bus joins a fleet through NATS (docs/fleet.md). Pure records and checks."""

from __future__ import annotations

import importlib.util
import os
import re
from urllib.parse import urlsplit

import msgspec

from ..bus.topics import check_pattern
from ..core.errors import BusError, ConfigError
from ..core.units import Duration, Size
from .common import Struct
from .limits import Range, check_ranges

RANGES = {"buffer": Range(0, 10_000_000), "reconnect.factor": Range(1, 100), "reconnect.jitter": Range(0, 1)}
_FLEET = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SCHEMES = ("nats", "tls", "ws", "wss")


class NatsTls(Struct):
    ca: str | None = None
    """CA bundle that signs the server's certificate (else the system's)."""
    cert: str | None = None
    key: str | None = None
    """Client certificate and key, for servers that verify clients."""
    hostname: str | None = None
    """Name to check the server's certificate against, when it differs from the URL's host."""


class NatsReconnect(Struct):
    """The project's backoff (core.backoff.backoff_delay) between connection attempts."""

    initial: Duration = Duration("100ms")
    factor: float = 2.0
    max: Duration = Duration("5s")
    jitter: float = 0.1


class NatsConfig(Struct):
    url: str | list[str] = "nats://127.0.0.1:4222"
    fleet: str = "supctl"
    host: str = msgspec.field(default_factory=lambda: os.uname().nodename)
    """This master's name in the fleet: `msg.host` on the other masters, HOST in `supctl fleet`."""
    user: str | None = None
    password: str | None = None
    token: str | None = None
    creds: str | None = None
    """A .creds file (JWT and nkey seed), relative to the procfile."""
    nkey: str | None = None
    """An nkey seed file, relative to the procfile."""
    tls: NatsTls | None = None
    export: list[str] = []
    imports: list[str] = msgspec.field(default_factory=list, name="import")
    buffer: int = 10_000
    """Outbound messages kept while NATS is unreachable; older ones are dropped and counted."""
    buffer_size: Size = Size("64MiB")
    retained: bool = True
    """Keep retained values of exported topics in the JetStream key-value bucket `<fleet>_retained`."""
    request_timeout: Duration = Duration("30s")
    """Longest a request sent out may wait for its reply (the requester's own timeout usually ends it first)."""
    fleet_control: bool = True
    """Answer `supctl fleet` (status, start, stop, restart) over NATS."""
    reconnect: NatsReconnect = NatsReconnect()

    @property
    def urls(self) -> list[str]:
        return [self.url] if isinstance(self.url, str) else list(self.url)

    @property
    def bucket(self) -> str:
        return f"{self.fleet}_retained"


def check_nats(file: str, cfg: NatsConfig) -> list[ConfigError]:
    """Every problem in a converted `[bus.nats]`, each naming its key."""
    errors: list[ConfigError] = []

    def bad(key: str, message: str) -> None:
        errors.append(ConfigError(file, f"bus.nats.{key}", message))

    if importlib.util.find_spec("nats") is None:
        errors.append(ConfigError(file, "bus.nats", "needs the NATS client: pip install 'supctl[nats]' (nats-py)"))
    if not cfg.urls:
        bad("url", "expected a server URL like 'nats://127.0.0.1:4222', found an empty list")
    for i, url in enumerate(cfg.urls):
        key = "url" if isinstance(cfg.url, str) else f"url[{i}]"
        try:
            parts = urlsplit(url if "://" in url else f"nats://{url}")
            parts.port  # noqa: B018 - raises ValueError for a bad port
        except ValueError as e:
            bad(key, f"not a server URL: {e}")
            continue
        if parts.scheme not in _SCHEMES or not parts.hostname:
            bad(key, f"expected nats://HOST:PORT (or tls://, ws://, wss://), found {url!r}")
    if not _FLEET.match(cfg.fleet):
        bad("fleet", f"expected 1-64 letters, digits, '_' or '-' (it prefixes NATS subjects), found {cfg.fleet!r}")
    if not cfg.host or any(c.isspace() for c in cfg.host) or ":" in cfg.host:
        bad("host", f"expected a name without spaces or ':', found {cfg.host!r}")
    kinds = [k for k, v in (("user", cfg.user), ("token", cfg.token), ("creds", cfg.creds), ("nkey", cfg.nkey)) if v]
    if len(kinds) > 1:
        bad(kinds[1], f"use one way to authenticate; {' and '.join(kinds)} are both set")
    if cfg.password is not None and cfg.user is None:
        bad("password", "set together with user")
    for key in ("export", "imports"):
        for i, pattern in enumerate(getattr(cfg, key)):
            try:
                check_pattern(pattern)
            except BusError as e:
                bad(f"{'import' if key == 'imports' else key}[{i}]", str(e))
            if pattern.startswith("supctl.presence"):
                bad(f"{'import' if key == 'imports' else key}[{i}]", "presence crosses hosts on its own; "
                    "supctl.presence.* cannot be bridged")
    check_ranges(file, "bus.nats", cfg, RANGES, errors)
    return errors
