"""Command plugins: the `exec` check (exit 0 = healthy) and the `exec` recovery."""

from __future__ import annotations

import asyncio
import os
import signal

import msgspec

from supervisor.plugin import CheckContext, HealthCheck, Recovery, RecoveryContext, Result, split_argv


class ExecOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    cmd: str | list[str]
    """An argv list, or a string split with shlex; never run through a shell."""

    def __post_init__(self) -> None:
        if not split_argv(self.cmd):
            raise ValueError("cmd must not be empty")


def environment(ctx: CheckContext, reason: str | None = None) -> dict[str, str]:
    env = {**os.environ, "SUPCTL_BOT": ctx.bot, "SUPCTL_INSTANCE": str(ctx.instance),
           "SUPCTL_PID": str(ctx.pid or "")}
    if reason is not None:
        env["SUPCTL_REASON"] = reason
    return env


async def run(cmd: list[str], env: dict[str, str], cwd: str | None) -> tuple[int, str]:
    """Exit status and the last output line; if cancelled (timed out), kill the command's whole group.

    It runs where the bot runs (`cwd`), so `cmd = ["python3", "scripts/heal.py"]` means the same file as in the bot's
    own cmd, whatever directory the master was started from (a daemonized master sits in /)."""
    proc = await asyncio.create_subprocess_exec(
        *cmd, env=env, cwd=cwd, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = await proc.communicate()
    except asyncio.CancelledError:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        await asyncio.shield(proc.communicate())  # reap it and close its pipes, even as we give up on it
        raise
    lines = out.decode(errors="replace").strip().splitlines()
    return proc.returncode or 0, lines[-1] if lines else ""


class ExecCheck(HealthCheck):
    """Run a command (in the bot's working directory) with SUPCTL_BOT/INSTANCE/PID set; exit 0 is healthy, else its last output line is the reason."""

    name = "exec"
    Options = ExecOptions

    async def check(self, ctx: CheckContext) -> Result:
        try:
            code, last = await run(split_argv(self.options.cmd), environment(ctx), ctx.cwd)
        except OSError as e:
            return Result.fail(f"cannot run {split_argv(self.options.cmd)[0]}: {e.strerror or e}")
        if code == 0:
            return Result.ok(last or "exit 0")
        return Result.fail(f"exit {code}" + (f": {last}" if last else ""))


class ExecRecovery(Recovery):
    """Run a command (in the bot's working directory) with SUPCTL_BOT/INSTANCE/PID/REASON set; a non-zero exit fails the recovery."""

    name = "exec"
    Options = ExecOptions

    async def recover(self, ctx: RecoveryContext, failure: str) -> None:
        code, last = await run(split_argv(self.options.cmd), environment(ctx, failure), ctx.cwd)
        if code != 0:
            raise RuntimeError(f"{split_argv(self.options.cmd)[0]} exited {code}" + (f": {last}" if last else ""))
