"""The `tcp` check: something accepts connections on host:port."""

from __future__ import annotations

import asyncio

import msgspec

from supervisor.plugin import CheckContext, HealthCheck, Result


class TcpOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    port: int
    host: str = "127.0.0.1"

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be 1..65535, found {self.port}")


class TcpCheck(HealthCheck):
    """Connect and close; the runner's timeout bounds a blackholed address."""

    name = "tcp"
    Options = TcpOptions

    async def check(self, ctx: CheckContext) -> Result:
        where = f"{self.options.host}:{self.options.port}"
        try:
            _, writer = await asyncio.open_connection(self.options.host, self.options.port)
        except OSError as e:
            return Result.fail(f"connect {where}: {e.strerror or e}")
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass  # the peer reset first: it still accepted, which is what we test
        return Result.ok(f"connected to {where}")
