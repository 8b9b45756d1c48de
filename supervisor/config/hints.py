"""What a key from pm2 or supervisord is called here: the unknown-key message of a bot table says so.

A generic did-you-mean would suggest `autostart` for pm2's `autorestart`; these say what people mean.
"""

from __future__ import annotations

from collections.abc import Sequence

from .tables import unknown_key

HINTS: dict[str, str] = {
    "autorestart": 'pm2 and supervisord\'s autorestart is `restart` here: restart = "always", "on-failure" or "never"',
    "max_memory_restart": 'pm2\'s max_memory_restart is a memory health check here: '
                          '[[bots.NAME.health]] check = "memory", max_rss = "500MB", recover = "restart"',
    "numprocs": "supervisord's numprocs is `instances` here",
    "exec_mode": "pm2's cluster mode is `instances` here (each instance is its own process)",
    "command": "supervisord's command is `cmd` here (an argv list, or a string split like a shell would)",
    "script": "pm2's script is `cmd` here (an argv list, or a string split like a shell would)",
    "args": "pm2's args go into `cmd` here: cmd = [\"python\", \"bot.py\", \"--flag\"]",
    "interpreter": "pm2's interpreter goes first in `cmd` here: cmd = [\"python3\", \"bot.py\"]",
    "directory": "supervisord's directory is `cwd` here",
    "environment": "supervisord's environment is `env` here: env = { KEY = \"value\" }",
    "stopwaitsecs": "supervisord's stopwaitsecs is `stop_timeout` here, with a unit: stop_timeout = \"10s\"",
    "kill_timeout": "pm2's kill_timeout is `stop_timeout` here, with a unit: stop_timeout = \"10s\"",
    "stopsignal": "supervisord's stopsignal is `stop_signal` here: stop_signal = \"INT\"",
    "startsecs": "supervisord's startsecs is `start_grace` here, with a unit: start_grace = \"1s\"",
    "min_uptime": "pm2's min_uptime is `start_grace` here, with a unit: start_grace = \"1s\"",
    "startretries": "supervisord's startretries is `restart_limit` here: restart_limit = { count = 3, window = \"1m\" }",
    "max_restarts": "pm2's max_restarts is `restart_limit` here: restart_limit = { count = 10, window = \"5m\" }",
    "restart_delay": "pm2's restart_delay is `backoff` here: backoff = { initial = \"1s\", factor = 1.0 }",
    "exp_backoff_restart_delay": "pm2's exp_backoff_restart_delay is `backoff` here: backoff = { initial = \"100ms\", factor = 2.0 }",
    "exitcodes": "supervisord's exitcodes is `success_codes` here",
    "stop_exit_codes": "pm2's stop_exit_codes is `success_codes` here",
    "cron_restart": "pm2's cron_restart is `restart_cron` here",
    "ignore_watch": "pm2's ignore_watch is `watch_ignore` here",
    "env_production": "per-environment env blocks are not a thing here: use `env` or `env_file`",
    "cwd_dir": "the working directory is `cwd` here",
    "priority": "supervisord's priority is `depends_on` here: bots start after the bots they depend on",
    "user": "bots run as the master's user; run one master per user",
    "stdout_logfile": "every instance logs to state_dir/logs/NAME.log here; size and backups are `log`",
    "stderr_logfile": "stderr goes into the same log, each line tagged [stderr]; size and backups are `log`",
    "out_file": "every instance logs to state_dir/logs/NAME.log here; size and backups are `log`",
    "error_file": "stderr goes into the same log, each line tagged [stderr]; size and backups are `log`",
    "log_date_format": "timestamps are `log = { timestamps = true }` here (ISO-8601)",
    "redirect_stderr": "stdout and stderr always share one log here, stderr lines tagged [stderr]",
    "instance_var": "each instance gets SUPCTL_INSTANCE=k (and SUPCTL_BOT) in its environment",
}


def unknown_bot_key(name: str, fields: Sequence[str]) -> str:
    """The unknown-key message of a [bots.NAME] or [defaults] table: a pm2/supervisord hint, else did-you-mean."""
    hint = HINTS.get(name)
    return f"unknown key; {hint}" if hint else unknown_key(name, fields)
