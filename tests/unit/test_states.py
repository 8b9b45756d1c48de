"""The transition table: each allowed transition named, and the forbidden ones refused."""

from __future__ import annotations

import itertools

import pytest

from supervisor.core.states import (
    ALIVE,
    SETTLED,
    TRANSITIONS,
    IllegalTransition,
    State,
    check_transition,
)

S = State


def ok(old: State, new: State) -> None:
    check_transition(old, new)


def test_stopped_to_starting():
    ok(S.STOPPED, S.STARTING)


def test_starting_to_running():
    ok(S.STARTING, S.RUNNING)


def test_starting_to_backoff():
    ok(S.STARTING, S.BACKOFF)


def test_running_to_backoff():
    ok(S.RUNNING, S.BACKOFF)


def test_backoff_to_starting():
    ok(S.BACKOFF, S.STARTING)


def test_starting_to_fatal():
    ok(S.STARTING, S.FATAL)


def test_running_to_stopping_to_stopped():
    ok(S.RUNNING, S.STOPPING)
    ok(S.STOPPING, S.STOPPED)


def test_starting_to_stopping():
    ok(S.STARTING, S.STOPPING)


def test_backoff_to_stopped():
    ok(S.BACKOFF, S.STOPPED)


def test_running_to_exited_and_exited_to_starting():
    ok(S.RUNNING, S.EXITED)
    ok(S.EXITED, S.STARTING)


def test_fatal_to_starting_only_by_explicit_start():
    ok(S.FATAL, S.STARTING)
    assert TRANSITIONS[S.FATAL] == {S.STARTING}


def test_a_health_restart_leaves_stopping_for_backoff_or_fatal():
    ok(S.STOPPING, S.BACKOFF)
    ok(S.STOPPING, S.FATAL)


def test_stopping_to_running_is_illegal():
    with pytest.raises(IllegalTransition, match="STOPPING -> RUNNING"):
        check_transition(S.STOPPING, S.RUNNING)


@pytest.mark.parametrize("old, new", [
    (S.STOPPED, S.RUNNING), (S.STOPPED, S.STOPPING), (S.BACKOFF, S.RUNNING), (S.FATAL, S.BACKOFF),
    (S.EXITED, S.RUNNING), (S.STOPPING, S.STARTING), (S.RUNNING, S.STARTING), (S.STOPPED, S.STOPPED),
])
def test_illegal_transitions(old, new):
    with pytest.raises(IllegalTransition):
        check_transition(old, new)


def test_table_covers_every_state_and_no_self_loops():
    assert set(TRANSITIONS) == set(State)
    for old, new in itertools.product(State, State):
        if old == new:
            assert new not in TRANSITIONS[old]


def test_alive_and_settled_sets():
    assert ALIVE == {S.STARTING, S.RUNNING, S.STOPPING}
    assert SETTLED == {S.RUNNING, S.STOPPED, S.EXITED, S.FATAL}
    assert not ALIVE & {S.BACKOFF, S.EXITED, S.FATAL, S.STOPPED}


def test_states_imports_only_stdlib():
    import ast
    import sys
    from pathlib import Path

    import supervisor.core.states as mod

    tree = ast.parse(Path(mod.__file__).read_text())
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and not n.level}
    assert names <= set(sys.stdlib_module_names) | {"__future__"}
