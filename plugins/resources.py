"""Resource checks over the instance's whole process tree (`memory`, `cpu`) and over the host (`disk`, `host`)."""

from __future__ import annotations

import collections
import shutil
import time

import msgspec
import psutil

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


class HostOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    max_memory_percent: float | None = None
    """The host's memory in use (what `free` counts as not available), in percent."""
    max_disk_percent: float | None = None
    """The filesystem holding `path`, used, in percent (as `df` shows it)."""
    max_cpu_percent: float | None = None
    """Every CPU of the host busy since the previous check, in percent (100 = all cores busy)."""
    path: str = "/"

    def __post_init__(self) -> None:
        limits = {"max_memory_percent": self.max_memory_percent, "max_disk_percent": self.max_disk_percent,
                  "max_cpu_percent": self.max_cpu_percent}
        if all(v is None for v in limits.values()):
            raise ValueError("a host check needs at least one limit: max_memory_percent, max_disk_percent or max_cpu_percent")
        for key, value in limits.items():
            if value is not None and not 0 < value <= 100:
                raise ValueError(f"{key} must be a percent above 0 and at most 100, found {value:g}")


class HostCheck(HealthCheck):
    """The whole machine, not the bot: memory, disk and CPU usage against percent limits (a host over 80% needs
    action whichever process is to blame). The CPU share is measured between two checks, so the first one says
    "measuring"."""

    name = "host"
    Options = HostOptions

    def __init__(self, options: HostOptions) -> None:
        super().__init__(options)
        self.cpu_before: tuple[float, float] | None = None

    async def check(self, ctx: CheckContext) -> Result:
        o = self.options
        seen: list[tuple[str, float | None, float]] = []
        if o.max_memory_percent is not None:
            seen.append(("memory", psutil.virtual_memory().percent, o.max_memory_percent))
        if o.max_disk_percent is not None:
            try:
                seen.append((f"disk {o.path}", psutil.disk_usage(o.path).percent, o.max_disk_percent))
            except OSError as e:
                return Result.fail(f"{o.path}: {e.strerror or e}")
        if o.max_cpu_percent is not None:
            seen.append(("cpu", self._cpu_percent(), o.max_cpu_percent))
        over = [f"{what} {used:.0f}% > max {limit:g}%" for what, used, limit in seen if used is not None and used > limit]
        text = ", ".join(f"{what} {used:.0f}%" if used is not None else f"{what} measuring" for what, used, _ in seen)
        return Result.fail(", ".join(over)) if over else Result.ok(text)

    def _cpu_percent(self) -> float | None:
        """Busy share of every CPU since the previous call (None on the first), from /proc/stat's counters."""
        times = psutil.cpu_times()
        total = sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)  # guest is inside user
        idle = times.idle + getattr(times, "iowait", 0.0)
        before, self.cpu_before = self.cpu_before, (total, idle)
        if before is None or total <= before[0]:
            return None
        return 100 * (1 - (idle - before[1]) / (total - before[0]))
