"""[tasks.NAME]: commands run on a schedule (cron, every, at) rather than kept running."""

from __future__ import annotations

from datetime import datetime

from ..core.errors import ConfigError
from ..core.units import Duration
from .common import Command, LogConfig
from .limits import TASK, check_ranges
from .schedules import At, Cron, Every, Schedule
from .tables import convert_table, describe


class TaskConfig(Command):
    cron: str | None = None
    every: Duration | None = None
    at: datetime | None = None
    tz: str = "UTC"
    overlap: bool = False
    timeout: Duration | None = None
    stop_timeout: Duration = Duration("10s")
    """When the master stops the task (shutdown, or a reload that drops or changes it), a run still going is
    awaited this long before its group is killed."""
    log: LogConfig | None = None

    def schedule(self) -> Schedule:
        if self.cron is not None:
            return Cron(self.cron, self.tz)
        if self.every is not None:
            return Every(self.every)
        assert self.at is not None
        return At(self.at, self.tz)


def parse_tasks(raw: object, file: str, errors: list[ConfigError], bot_names: set[str]) -> dict[str, TaskConfig]:
    if not isinstance(raw, dict):
        errors.append(ConfigError(file, "tasks", f"expected a table of [tasks.NAME] tables, found {describe(raw)}"))
        return {}
    tasks: dict[str, TaskConfig] = {}
    for name, table in raw.items():
        key = f"tasks.{name}"
        if name in bot_names:
            errors.append(ConfigError(file, key, f"'{name}' is also a bot; tasks and bots share log names, so pick another name"))
            continue
        task = convert_table(table, TaskConfig, file, key, errors)
        if task is not None:
            check_ranges(file, key, task, TASK, errors)
        if task is not None and _check(task, file, key, errors):
            tasks[name] = task
    return tasks


def _check(task: TaskConfig, file: str, key: str, errors: list[ConfigError]) -> bool:
    given = [k for k in ("cron", "every", "at") if getattr(task, k) is not None]
    if len(given) != 1:
        errors.append(ConfigError(file, key, f"expected exactly one of cron, every, at; found {', '.join(given) or 'none'}"))
        return False
    try:
        task.schedule()
    except ValueError as e:
        errors.append(ConfigError(file, f"{key}.{given[0]}", str(e)))
        return False
    return True
