"""A state_dir someone else controls, end to end (issue 12 item 12): `supctl start` refuses it before touching
anything in it, and the CLI does not trust a control socket another user serves."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from harness import SUPCTL

from supervisor.control.client import Client
from supervisor.core.errors import ControlError

NOBODY = 65534
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")


def test_start_refuses_a_state_dir_another_user_owns_and_removes_nothing(tmp_path: Path) -> None:
    (tmp_path / "procfile.toml").write_text('[supervisor]\nstate_dir = "state"\n[bots.a]\ncmd = ["sleep", "60"]\n')
    state = tmp_path / "state"
    state.mkdir(mode=0o700)
    (state / "master.pid").write_text("planted")
    os.chown(state, NOBODY, NOBODY)
    out = subprocess.run([*SUPCTL, "start", str(tmp_path / "procfile.toml")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert f"supervisor.state_dir: {state} is owned by uid {NOBODY}, not by this user" in out.stderr, out.stderr
    assert (state / "master.pid").read_text() == "planted" and sorted(p.name for p in state.iterdir()) == ["master.pid"]


def test_control_socket_served_by_another_user_is_not_trusted(tmp_path: Path) -> None:
    sock = tmp_path / "control.sock"
    serve = ("import os, socket, sys\ns = socket.socket(socket.AF_UNIX)\ns.bind(sys.argv[1])\n"
             f"os.setuid({NOBODY})\ns.listen()\nprint('listening', flush=True)\ns.accept()[0].recv(1)\n")
    proc = subprocess.Popen([sys.executable, "-c", serve, str(sock)], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "listening\n"
        with pytest.raises(ControlError, match="is served by uid 65534, not by this user"):
            Client(str(sock), timeout=5)
    finally:
        proc.kill()
        proc.wait()
