"""Resource checks over the instance's whole process tree: `memory`, `cpu`, and the host's `disk`."""

from __future__ import annotations

import collections
import shutil
import time

import msgspec

from supervisor.plugin import CheckContext, Duration, HealthCheck, Result, Size, format_size


class MemoryOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    max_rss: Size


class MemoryCheck(HealthCheck):
    """RSS of the process and all its descendants (pm2's max_memory_restart, but counting workers)."""

    name = "memory"
    Options = MemoryOptions

    async def check(self, ctx: CheckContext) -> Result:
        rss = ctx.tree_rss()
        if rss > self.options.max_rss:
            return Result.fail(f"rss {format_size(rss)} > max {format_size(self.options.max_rss)}")
        return Result.ok(f"rss {format_size(rss)}")


class CpuOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    max_percent: float
    window: Duration = Duration("1m")


class CpuCheck(HealthCheck):
    """Average CPU of the tree over `window` (100 = one core); a short burst is not a failure.

    Until the samples span a whole window the check reports healthy ("measuring").
    """

    name = "cpu"
    Options = CpuOptions

    def __init__(self, options: CpuOptions) -> None:
        super().__init__(options)
        self.samples: collections.deque[tuple[float, float]] = collections.deque()
        self.pid: int | None = None

    async def check(self, ctx: CheckContext) -> Result:
        now, used = time.monotonic(), ctx.tree_cpu_seconds()
        if ctx.pid != self.pid or (self.samples and used < self.samples[-1][1]):
            self.samples.clear()  # a new process: its counters restarted
            self.pid = ctx.pid
        self.samples.append((now, used))
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.options.window:
            self.samples.popleft()
        start, base = self.samples[0]
        if now - start < self.options.window:
            return Result.ok(f"measuring ({now - start:.1f}s of {self.options.window:g}s)")
        percent = 100 * (used - base) / (now - start)
        text = f"cpu {percent:.0f}% over {now - start:.1f}s"
        return Result.fail(f"{text} > max {self.options.max_percent:g}%") if percent > self.options.max_percent else Result.ok(text)


class DiskOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    path: str
    min_free: Size


class DiskCheck(HealthCheck):
    """Free space on the filesystem holding `path` (a bot that cannot write its state is not healthy)."""

    name = "disk"
    Options = DiskOptions

    async def check(self, ctx: CheckContext) -> Result:
        try:
            free = shutil.disk_usage(self.options.path).free
        except OSError as e:
            return Result.fail(f"{self.options.path}: {e.strerror or e}")
        if free < self.options.min_free:
            return Result.fail(f"{format_size(free)} free on {self.options.path} < min {format_size(self.options.min_free)}")
        return Result.ok(f"{format_size(free)} free")
