"""The exception tree: every error supctl raises on purpose is a SupctlError."""

from __future__ import annotations


class SupctlError(Exception):
    """Base of every error the project raises deliberately."""


class ConfigError(SupctlError):
    """A procfile problem a person can act on: which file, which key, what is wrong."""

    def __init__(self, file: str, key: str, message: str, line: int | None = None, col: int | None = None):
        self.file = file
        self.key = key
        self.message = message
        self.line = line
        self.col = col
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}" + (f":{self.col}" if self.col is not None else "")
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class ConfigErrors(SupctlError):
    """Every problem found in one procfile, so `validate` can print them all at once. `partial` is what could be
    made of the procfile anyway (a Procfile of the bots that have a table), so later checks (plugins) still run."""

    def __init__(self, errors: list[ConfigError], partial: object = None):
        self.errors = errors
        self.partial = partial
        super().__init__("\n".join(str(e) for e in errors))


class SpawnError(SupctlError):
    """A bot's process could not be started (missing executable, bad cwd, ...)."""


class PluginError(SupctlError):
    """A plugin failed to load, or failed in a way the runner reports."""


class BusError(SupctlError):
    """A bus frame, handshake or connection problem."""


class ControlError(SupctlError):
    """The control socket could not be reached or answered with an error."""
