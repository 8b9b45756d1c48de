"""`supctl start -f` as a container's main process (issue 13 item 7): every bot line on stdout as `name-k | line`,
the log files still written, --quiet, colour only on a terminal and never with NO_COLOR, and the exit status."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from harness import SUPCTL, token_procs

TALKER = "import sys, time\nwhile True:\n    print('hello', flush=True); print('oops', file=sys.stderr, flush=True); time.sleep(0.05)"


def procfile(tmp_path: Path) -> Path:
    path = tmp_path / "procfile.toml"
    path.write_text(f'[supervisor]\nstate_dir = "state"\n[bots.talker]\ncmd = ["{sys.executable}", "-c", {TALKER!r}]\n'
                    f'instances = 2\nstart_grace = "100ms"\n')
    return path


def read_until(fd: int, wanted: list[bytes], timeout: float = 20.0) -> bytes:
    """Read `fd` until every `wanted` piece has been seen (select with a deadline, no sleeps)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while not all(w in seen for w in wanted):
        left = deadline - time.monotonic()
        if left <= 0:
            pytest.fail(f"timed out waiting for {wanted}; got {seen[-2000:]!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                pytest.fail(f"stdout closed before {wanted}; got {seen[-2000:]!r}")
            seen += chunk
    return seen


@pytest.fixture
def token():
    tok = os.urandom(8).hex()
    yield tok
    left = psutil.wait_procs(token_procs(tok), timeout=10)[1]
    for p in left:
        p.kill()
    assert not left, left


def start(tmp_path: Path, token: str, *extra: str, stdout: int, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SUPCTL_TEST_TOKEN": token, **(env or {})}
    env.pop("SUPCTL_PROCFILE", None)
    return subprocess.Popen([*SUPCTL, "start", "-f", *extra, str(procfile(tmp_path))], cwd=tmp_path, env=env,
                            stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.DEVNULL, start_new_session=True)


def test_every_bot_line_is_on_stdout_prefixed_and_still_in_the_log_files(tmp_path: Path, token: str) -> None:
    proc = start(tmp_path, token, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    out = read_until(proc.stdout.fileno(), [b"talker-0 | hello\n", b"talker-1 | hello\n", b"talker-1 | [stderr] oops\n"])
    assert b"\x1b[" not in out  # a pipe is not a terminal
    for line in out.splitlines()[:-1]:
        assert line.split(b" | ", 1)[0] in (b"talker-0", b"talker-1"), line
    assert "hello" in (tmp_path / "state" / "logs" / "talker-0.log").read_text()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0  # a clean stop (signal or supctl shutdown) exits 0


def test_quiet_keeps_bot_output_off_stdout(tmp_path: Path, token: str) -> None:
    proc = start(tmp_path, token, "--quiet", stdout=subprocess.PIPE)
    log = tmp_path / "state" / "logs" / "talker-0.log"
    deadline = time.monotonic() + 20
    while not (log.exists() and log.read_text().count("hello") >= 3):
        assert time.monotonic() < deadline, "no output in the log"
        select.select([], [], [], 0.05)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0 and b"talker" not in out


@pytest.mark.parametrize("no_color", [False, True])
def test_colour_on_a_terminal_unless_no_color(tmp_path: Path, token: str, no_color: bool) -> None:
    master_fd, slave_fd = os.openpty()
    try:
        proc = start(tmp_path, token, stdout=slave_fd, env={"NO_COLOR": "1"} if no_color else {})
        os.close(slave_fd)
        out = read_until(master_fd, [b"talker-0 |", b"talker-1 |", b"hello"])
        assert (b"\x1b[" in out) is not no_color
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        os.close(master_fd)


def test_a_foreground_master_that_cannot_start_exits_1(tmp_path: Path) -> None:
    (tmp_path / "procfile.toml").write_text('[bots.x]\ncmd = "true"\ninstances = 0\n')
    out = subprocess.run([*SUPCTL, "start", "-f", str(tmp_path / "procfile.toml")], capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "bots.x.instances" in out.stderr
