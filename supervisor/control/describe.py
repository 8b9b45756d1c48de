"""`supctl describe BOT` (pm2 describe): a bot's resolved configuration and live state, built on the master."""

from __future__ import annotations

import re
from typing import Any

import msgspec

from ..core.backoff import backoff_delay
from ..engine.bot import Bot
from ..health.target import HealthBoard
from .protocol import BotDescription, Budget, DescribeReply, HealthRow, InstanceStatus
from .rows import health_entry

SECRET = re.compile(r"SECRET|TOKEN|PASS|KEY|CREDENTIAL|AUTH|PRIVATE|COOKIE|SESSION", re.I)
"""Environment keys whose values `describe` masks."""


def masked(env: dict[str, str]) -> dict[str, str]:
    return {k: "****" if SECRET.search(k) else v for k, v in sorted(env.items())}


def describe_bot(bot: Bot, rows: list[InstanceStatus], health: HealthBoard) -> DescribeReply:
    """Every key of the bot after [defaults] were merged, what runs, where its logs are, how much budget is left."""
    config: dict[str, Any] = msgspec.to_builtins(bot.config, enc_hook=str)  # Duration and Size as the procfile wrote them
    config.pop("env", None)
    first = bot.instances[0]
    launch = first.launch
    env = {k: v for k, v in launch.env.items() if k in bot.config.env or k.startswith("SUPCTL_")}
    b = bot.config.backoff
    budgets = [Budget(instance=i.index, used=i.budget.used, left=max(0, i.budget.count - i.budget.used),
                      count=i.budget.count, window=str(bot.config.restart_limit.window),
                      next_backoff_s=float(backoff_delay(i.attempt, b.initial, b.factor, b.max, 0.0))) for i in bot.instances]
    checks = []
    for inst in bot.instances:
        ih = health.of(inst)
        if ih is not None:
            checks.append(HealthRow(bot=inst.bot, instance=inst.index, summary=health.describe(inst) or "",
                                    records=[health_entry(r) for r in ih.runner.history()]))
    return DescribeReply(description=BotDescription(
        bot=bot.name, config=config, argv=launch.argv, cwd=str(launch.cwd), env=masked(env),
        logs=[str(i.log.path) for i in bot.instances], budgets=budgets, depends_on=list(bot.config.depends_on),
        instances=rows, health=checks))
