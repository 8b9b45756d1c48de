"""Container mode copies bot lines to stdout unless nobody can read them: stdout on /dev/null."""

from __future__ import annotations

import os
import sys

from supervisor.cli.start import _stdout_is_devnull


def test_stdout_on_dev_null_turns_the_copy_off_and_a_file_or_pipe_keeps_it(tmp_path, monkeypatch) -> None:
    with open(os.devnull, "w") as null:
        monkeypatch.setattr(sys, "stdout", null)
        assert _stdout_is_devnull()
    with open(tmp_path / "out.txt", "w") as f:
        monkeypatch.setattr(sys, "stdout", f)
        assert not _stdout_is_devnull()
    r, w = os.pipe()
    with os.fdopen(w, "w") as pipe, os.fdopen(r):
        monkeypatch.setattr(sys, "stdout", pipe)
        assert not _stdout_is_devnull()
