"""Auto-heal for the automation (argv: hourly or resources): removes the locks of cycles whose process is gone, prunes
old reports, and when the host is over its limits (run by the `host` check's exec recovery, SUPCTL_REASON says why)
also clears the cache. Each run appends one line to work/heal.log and prints it (`supctl logs heal`)."""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

WORK = Path("work")
KEEP_REPORTS = int(os.environ.get("KEEP_REPORTS", "24"))


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def heal(why: str) -> str:
    done = []
    for lock in sorted((WORK / "locks").glob("*.lock")):
        if not alive(int(lock.stem)):
            lock.unlink(missing_ok=True)
            done.append(f"removed stale lock {lock.relative_to(WORK)}")
    reports = sorted((WORK / "reports").glob("*.json"))
    keep = KEEP_REPORTS if why == "hourly" else KEEP_REPORTS // 4
    for old in reports[:-keep] if keep else reports:
        old.unlink(missing_ok=True)
    if len(reports) > keep:
        done.append(f"pruned {len(reports) - keep} reports")
    if why != "hourly":
        cached = list((WORK / "cache").glob("*.json"))
        for f in cached:
            f.unlink(missing_ok=True)
        done.append(f"cleared cache ({len(cached)} files)")
    return f"{time.strftime('%Y-%m-%d %H:%M:%S')} auto-heal ({why}): {'; '.join(done) or 'nothing to heal'}"


if __name__ == "__main__":
    why = "hourly" if sys.argv[1] == "hourly" else os.environ.get("SUPCTL_REASON", "host over its limits")
    for sub in ("cache", "reports", "locks"):
        (WORK / sub).mkdir(parents=True, exist_ok=True)
    line = heal(why)
    with open(WORK / "heal.log", "a") as log:
        log.write(line + "\n")
    print(line, flush=True)
