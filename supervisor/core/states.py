"""Process states and the only transitions allowed between them (stdlib only, like supervisord's states.py)."""

from __future__ import annotations

import enum


class State(enum.Enum):
    STOPPED = "STOPPED"
    STARTING = "STARTING"
    RUNNING = "RUNNING"
    BACKOFF = "BACKOFF"
    STOPPING = "STOPPING"
    EXITED = "EXITED"
    FATAL = "FATAL"


S = State

TRANSITIONS: dict[State, frozenset[State]] = {
    S.STOPPED: frozenset({S.STARTING}),
    S.STARTING: frozenset({S.RUNNING, S.BACKOFF, S.STOPPING, S.EXITED, S.FATAL}),
    S.RUNNING: frozenset({S.BACKOFF, S.STOPPING, S.EXITED, S.FATAL}),
    S.BACKOFF: frozenset({S.STARTING, S.STOPPED}),
    # no BACKOFF -> FATAL: the budget is judged when a process ends, so FATAL comes from STARTING, RUNNING or STOPPING.
    S.STOPPING: frozenset({S.STOPPED, S.BACKOFF, S.FATAL}),
    # STOPPING -> BACKOFF/FATAL: a health restart ends the process like a crash and spends the budget.
    S.EXITED: frozenset({S.STARTING}),
    S.FATAL: frozenset({S.STARTING}),
}

ALIVE = frozenset({S.STARTING, S.RUNNING, S.STOPPING})
"""States in which an OS process exists."""

SETTLED = frozenset({S.RUNNING, S.STOPPED, S.EXITED, S.FATAL})
"""States that need no further action from the master to resolve."""


class IllegalTransition(RuntimeError):
    """A bug: the engine tried a transition the table forbids."""


def check_transition(old: State, new: State) -> None:
    if new not in TRANSITIONS[old]:
        raise IllegalTransition(f"{old.value} -> {new.value} is not a legal transition")
