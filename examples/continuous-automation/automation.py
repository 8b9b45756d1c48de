"""The codebase automation: every CYCLE_EVERY seconds it scans the Python files under WORKSPACE (syntax errors, TODO
and FIXME markers, one cache file per source in work/cache/) and writes a report to work/reports/; every ALIVE_EVERY
seconds it says it is alive on the bus (`automation.alive`, what the health check watches). A cycle holds
work/locks/<pid>.lock, so one killed midway leaves a stale lock for auto-heal (heal.py) to remove."""
from __future__ import annotations

import ast
import asyncio
import hashlib
import json
import os
import time
from pathlib import Path

from supervisor.bus import connect

WORK = Path("work")
SKIP = {"work", "__pycache__", ".supctl", ".venv", ".git"}


def check_file(path: Path) -> dict:
    """One source's findings, from work/cache/ while the file is unchanged."""
    stat = path.stat()
    cached = WORK / "cache" / (hashlib.sha1(f"{path}:{stat.st_mtime_ns}:{stat.st_size}".encode()).hexdigest() + ".json")
    if cached.exists():
        return json.loads(cached.read_text())
    text = path.read_text(errors="replace")
    try:
        ast.parse(text, str(path))
        error = None
    except SyntaxError as e:
        error = f"line {e.lineno}: {e.msg}"
    found = {"todos": text.count("TODO") + text.count("FIXME"), "syntax_error": error}
    cached.write_text(json.dumps(found))
    return found


def cycle(root: Path, n: int) -> dict:
    lock = WORK / "locks" / f"{os.getpid()}.lock"
    lock.write_text(str(os.getpid()))
    try:
        sources = [p for p in sorted(root.rglob("*.py")) if not SKIP & set(p.relative_to(root).parts)]
        found = {str(p.relative_to(root)): check_file(p) for p in sources}
        report = {"cycle": n, "time": time.time(), "files": len(found),
                  "todos": sum(f["todos"] for f in found.values()),
                  "syntax_errors": {name: f["syntax_error"] for name, f in found.items() if f["syntax_error"]}}
        (WORK / "reports" / f"{time.time_ns()}.json").write_text(json.dumps(report))
        return report
    finally:
        lock.unlink()


async def main() -> None:
    root = Path(os.environ.get("WORKSPACE", "."))
    every, alive_every = float(os.environ.get("CYCLE_EVERY", "30")), float(os.environ.get("ALIVE_EVERY", "10"))
    for sub in ("cache", "reports", "locks"):
        (WORK / sub).mkdir(parents=True, exist_ok=True)
    bus = await connect()
    print(f"automation up (pid {os.getpid()}), scanning {root.resolve()} every {every:g}s", flush=True)

    async def alive() -> None:
        while True:
            await bus.publish("automation.alive", {"pid": os.getpid(), "time": time.time()})
            await asyncio.sleep(alive_every)

    beat = asyncio.create_task(alive())
    n = 0
    while not beat.done():
        n += 1
        r = await asyncio.to_thread(cycle, root, n)
        print(f"cycle {n}: {r['files']} files, {r['todos']} TODO/FIXME, {len(r['syntax_errors'])} with syntax errors",
              flush=True)
        await asyncio.sleep(every)
    beat.result()


asyncio.run(main())
