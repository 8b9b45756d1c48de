"""File watching on real files: one callback per burst, none for ignored files."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from watchfiles import Change

from supervisor.jobs.watch import WatchFilter, watch_paths

DEBOUNCE_MS = 100
QUIET = 4 * DEBOUNCE_MS / 1000  # a few debounce windows in which nothing more may arrive
WAIT = 5.0


def test_filter_pattern_language(tmp_path: Path) -> None:
    f = WatchFilter(tmp_path, ["src/", "*.py", "conf/*.toml"], ["src/gen/", "*_test.py"])
    hit = lambda rel: f(Change.modified, str(tmp_path / rel))  # noqa: E731
    assert hit("src/a.txt") and hit("src/deep/er/b.json")
    assert hit("main.py") and hit("pkg/mod/x.py")
    assert hit("conf/app.toml") and hit("conf/sub/app.toml")
    assert not hit("srcx/a.txt") and not hit("README.md") and not hit("app.toml")
    assert not hit("src/gen/out.txt") and not hit("pkg/a_test.py")
    assert not hit("__pycache__/main.cpython-311.pyc") and not hit(".git/index") and not hit("src/.a.swp")
    assert not f(Change.modified, "/elsewhere/main.py")


def test_filter_glob_directories(tmp_path: Path) -> None:
    f = WatchFilter(tmp_path, ["bots/*/"], [])
    assert f(Change.added, str(tmp_path / "bots/trader/run.py"))
    assert not f(Change.added, str(tmp_path / "bots/readme.md"))
    assert f.watch_roots() == [tmp_path]


def test_watch_roots_cover_only_what_the_patterns_need(tmp_path: Path) -> None:
    for tree in ("src", "src/inner", "lib"):
        (tmp_path / tree).mkdir()
    assert WatchFilter(tmp_path, ["src/", "src/inner/", "lib/"], []).watch_roots() == [tmp_path / "lib", tmp_path / "src"]
    assert WatchFilter(tmp_path, ["src/", "*.py"], []).watch_roots() == [tmp_path]
    with pytest.raises(FileNotFoundError, match="missing"):
        WatchFilter(tmp_path, ["missing/"], []).watch_roots()


@pytest.mark.parametrize("patterns", [[], ["/"], ["../etc/"]])
def test_filter_rejects_patterns_outside_the_root(tmp_path: Path, patterns: list[str]) -> None:
    with pytest.raises(ValueError):
        WatchFilter(tmp_path, patterns, [])


class Recorder:
    """The on_change callback, with a way to wait for the next call."""

    def __init__(self, fail_first: bool = False) -> None:
        self.calls: list[set[str]] = []
        self._changed = asyncio.Event()
        self._fail_first = fail_first

    async def __call__(self, changed: set[str]) -> None:
        self.calls.append(changed)
        self._changed.set()
        if self._fail_first and len(self.calls) == 1:
            raise RuntimeError("restart failed")

    async def next_call(self, timeout: float) -> bool:
        """True when a call arrives within `timeout`, counting one that arrived since the last wait."""
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self._changed.clear()


async def start_watching(root: Path, patterns: list[str], ignore: list[str], recorder: Recorder):
    """Start watch_paths and wait until it says its kernel watches are armed."""
    stop, armed = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(watch_paths(root, patterns, ignore, recorder, DEBOUNCE_MS, stop, armed.set))
    await asyncio.wait_for(armed.wait(), WAIT)
    return stop, task


async def stop_watching(stop: asyncio.Event, task: asyncio.Task) -> None:
    stop.set()
    await asyncio.wait_for(task, WAIT)


def test_burst_of_writes_gives_one_callback(tmp_path: Path) -> None:
    async def scenario() -> None:
        recorder = Recorder()
        stop, task = await start_watching(tmp_path, ["*.py"], [], recorder)
        for i in range(10):  # an editor saving a few files, and one of them again and again
            (tmp_path / ("same.py" if i % 2 else f"m{i}.py")).write_text(f"v{i}")
            await asyncio.sleep(DEBOUNCE_MS / 1000 / 4)
        assert await recorder.next_call(WAIT), "no callback for the burst"
        assert not await recorder.next_call(QUIET), f"more than one callback: {recorder.calls}"
        assert recorder.calls == [{"same.py", "m0.py", "m2.py", "m4.py", "m6.py", "m8.py"}]
        await stop_watching(stop, task)

    asyncio.run(scenario())


def test_ignored_files_give_no_callback(tmp_path: Path) -> None:
    async def scenario() -> None:
        (tmp_path / "src" / "gen").mkdir(parents=True)
        recorder = Recorder()
        stop, task = await start_watching(tmp_path, ["src/", "*.py"], ["src/gen/", "*.log", "scratch.py"], recorder)
        (tmp_path / "src" / "gen" / "out.py").write_text("x")
        (tmp_path / "bot.log").write_text("line")
        (tmp_path / "scratch.py").write_text("x")
        (tmp_path / "notes.md").write_text("x")
        assert not await recorder.next_call(QUIET), f"ignored files fired: {recorder.calls}"
        (tmp_path / "src" / "app.cfg").write_text("x")  # still watching: a real change does fire
        assert await recorder.next_call(WAIT)
        assert recorder.calls == [{"src/app.cfg"}]
        await stop_watching(stop, task)

    asyncio.run(scenario())


def test_noisy_ignored_file_does_not_hold_back_the_callback(tmp_path: Path) -> None:
    # A bot logging under its own directory every 20 ms, faster than the debounce window.
    async def scenario() -> None:
        recorder = Recorder()
        stop, task = await start_watching(tmp_path, ["*.py"], ["*.log"], recorder)
        noisy = asyncio.Event()

        async def log_forever() -> None:
            with open(tmp_path / "bot.log", "a") as out:
                while not noisy.is_set():
                    out.write("tick\n")
                    out.flush()
                    await asyncio.sleep(0.02)

        logger = asyncio.create_task(log_forever())
        (tmp_path / "app.py").write_text("v2")
        assert await recorder.next_call(WAIT), "callback held back by ignored noise"
        assert not await recorder.next_call(QUIET)
        assert recorder.calls == [{"app.py"}]
        noisy.set()
        await logger
        await stop_watching(stop, task)

    asyncio.run(scenario())


def test_failing_callback_is_contained(tmp_path: Path) -> None:
    async def scenario() -> None:
        recorder = Recorder(fail_first=True)
        stop, task = await start_watching(tmp_path, ["*.py"], [], recorder)  # the probe took the failure
        assert not task.done()
        (tmp_path / "again.py").write_text("x")
        assert await recorder.next_call(WAIT)
        assert recorder.calls == [{"again.py"}]
        await stop_watching(stop, task)

    asyncio.run(scenario())


def test_bad_debounce_is_refused(tmp_path: Path) -> None:
    async def scenario() -> None:
        with pytest.raises(ValueError, match="debounce_ms"):
            await watch_paths(tmp_path, ["*.py"], [], Recorder(), 0, asyncio.Event())

    asyncio.run(scenario())
