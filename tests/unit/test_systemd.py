"""Unit generation checked by systemd's own parser; sd_notify against a real datagram socket."""

from __future__ import annotations

import asyncio
import grp
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import msgspec
import pytest

from supervisor.systemd.notify import Notifier, watchdog_interval, watchdog_loop
from supervisor.systemd.unit import (
    STOP_MARGIN,
    UnitOptions,
    default_unit_user,
    install_unit,
    named_unit_user,
    render_unit,
    unit_install_path,
)

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")


def _analyze(unit: Path, user_mode: bool, tmp_path: Path, extra_env: dict[str, str] | None = None):
    argv = [SYSTEMD_ANALYZE, "verify"]
    if "--man" in subprocess.run([SYSTEMD_ANALYZE, "--help"], capture_output=True, text=True).stdout:
        argv.append("--man=no")
    env = dict(os.environ, **(extra_env or {}))
    if user_mode:
        # A user manager needs a runtime dir; containers have no logind to make one.
        runtime = tmp_path / "xdg-runtime"
        runtime.mkdir(mode=0o700, exist_ok=True)
        env["XDG_RUNTIME_DIR"] = str(runtime)
        argv.append("--user")
    return subprocess.run(argv + [str(unit)], capture_output=True, text=True, env=env, timeout=60)


def _write_setup(tmp_path: Path, dirname: str, user_mode: bool, **kw) -> tuple[UnitOptions, Path]:
    base = tmp_path / dirname
    base.mkdir()
    exe = base / "supctl"
    shutil.copy("/bin/true", exe)
    procfile = base / "procfile.toml"
    procfile.write_text("")
    opts = UnitOptions(
        executable=str(exe), procfile=str(procfile), working_directory=str(base), user_mode=user_mode, **kw
    )
    unit = base / "supctl-test.service"
    unit.write_text(render_unit(opts))
    return opts, unit


VARIANTS = {
    "system-root-account": ("plain", False, {"user": "root", "group": "root"}),
    "system-no-account": ("plain", False, {}),
    "system-user-only": ("plain", False, {"user": "root"}),
    "user-unit": ("plain", True, {}),
    "system-spaces": ("dir with spaces 100%", False, {"user": "root", "group": "root"}),
    "user-spaces": ("dir with spaces $HOME", True, {}),
    "fractional-times": ("plain", False, {"stop_timeout": 2.5, "watchdog": 0.75, "restart_sec": 0.1}),
    "watchdog-off": ("plain", True, {"watchdog": 0}),
}


@needs_analyze
@pytest.mark.parametrize("variant", VARIANTS)
def test_render_unit_passes_systemd_analyze_verify(tmp_path: Path, variant: str) -> None:
    dirname, user_mode, kw = VARIANTS[variant]
    _, unit = _write_setup(tmp_path, dirname, user_mode, **kw)
    done = _analyze(unit, user_mode, tmp_path)
    # Strict: any word from systemd (warning, notice, error) fails the variant.
    assert done.returncode == 0, done.stderr
    assert done.stderr == "", done.stderr
    assert done.stdout == "", done.stdout


@needs_analyze
def test_verify_check_is_not_vacuous(tmp_path: Path) -> None:
    _, unit = _write_setup(tmp_path, "plain", False)
    (tmp_path / "plain" / "supctl").unlink()
    done = _analyze(unit, False, tmp_path)
    assert "supctl-test.service" in done.stderr


@needs_analyze
def test_exec_start_and_working_directory_round_trip_odd_paths(tmp_path: Path) -> None:
    # systemd's own dump of the parsed unit shows the argv and directory it would use.
    opts, unit = _write_setup(tmp_path, "odd dir 100% $X", False)
    procfile = Path(opts.working_directory) / 'we "ird" \\ $HOME %n.toml'
    procfile.write_text("")
    opts = msgspec.structs.replace(opts, procfile=str(procfile))
    unit.write_text(render_unit(opts))
    done = _analyze(unit, False, tmp_path, {"SYSTEMD_LOG_LEVEL": "debug"})
    assert done.returncode == 0, done.stderr
    lines = [line.strip() for line in done.stdout.splitlines() + done.stderr.splitlines()]
    dump = lines[lines.index("-> Unit supctl-test.service:") :]
    assert f"WorkingDirectory: {opts.working_directory}" in dump
    cmdline = next(line for line in dump if line.startswith("Command Line:")).split(":", 1)[1]
    # The dump shows words before exec-time variable expansion, which turns "$$" into "$".
    argv = [word.replace("$$", "$") for word in shlex.split(cmdline.replace("\\$", "$"))]
    assert argv == [opts.executable, "start", "-f", "-c", opts.procfile]


def test_render_unit_sets_the_service_contract() -> None:
    opts = UnitOptions(
        executable="/usr/bin/supctl", procfile="/srv/bots/procfile.toml", working_directory="/srv/bots",
        name="bots", user="bot", group="bot", stop_timeout=20, watchdog=30, restart_sec=5,
    )
    lines = render_unit(opts).splitlines()
    for expected in (
        "Type=notify", "NotifyAccess=main", "Restart=always", "RestartSec=5s", "WatchdogSec=30s",
        "KillMode=mixed", "Delegate=yes", f"TimeoutStopSec={int(20 + STOP_MARGIN)}s", "NoNewPrivileges=yes", "PrivateTmp=yes",
        "User=bot", "Group=bot", "WantedBy=multi-user.target", "WorkingDirectory=/srv/bots",
        'ExecStart="/usr/bin/supctl" "start" "-f" "-c" "/srv/bots/procfile.toml"',
    ):
        assert expected in lines


def test_subreaper_containment_asks_for_no_delegation() -> None:
    base = dict(executable="/a/supctl", procfile="/a/p.toml", working_directory="/a")
    assert "Delegate=yes" not in render_unit(UnitOptions(**base, delegate=False)).splitlines()
    assert "Delegate=yes" in render_unit(UnitOptions(**base, user_mode=True)).splitlines()


def test_render_user_unit_has_no_account_and_wants_default_target() -> None:
    text = render_unit(UnitOptions(executable="/a/supctl", procfile="/a/p.toml", working_directory="/a", user_mode=True))
    assert "WantedBy=default.target" in text.splitlines()
    assert "User=" not in text and "Group=" not in text and "PrivateTmp" not in text


def test_exec_start_escapes_specifiers_and_variables() -> None:
    text = render_unit(UnitOptions(executable="/a/supctl", procfile="/a/%n $X\\.toml", working_directory="/a%b"))
    assert 'ExecStart="/a/supctl" "start" "-f" "-c" "/a/%%n $$X\\\\.toml"' in text
    assert "WorkingDirectory=/a%%b" in text
    text = render_unit(UnitOptions(executable="/$a %b/supctl", procfile="/p", working_directory="/a"))
    assert 'ExecStart="/$a %%b/supctl" "start"' in text


@pytest.mark.parametrize(
    "kw",
    [
        {"executable": "supctl"},
        {"executable": '/a "b"/supctl'},
        {"procfile": "procfile.toml"},
        {"working_directory": "/a\nExecStartPre=/bin/evil"},
        {"working_directory": "/a "},
        {"name": "bad name"},
        {"user_mode": True, "user": "bot"},
        {"user": "root\nX=1"},
        {"stop_timeout": -1},
    ],
)
def test_unit_options_reject_what_systemd_would_misread(kw: dict) -> None:
    base = {"executable": "/a/supctl", "procfile": "/a/p.toml", "working_directory": "/a"}
    with pytest.raises(ValueError):
        UnitOptions(**{**base, **kw})


def test_default_unit_user_prefers_sudo_user(tmp_path: Path) -> None:
    procfile = tmp_path / "procfile.toml"
    procfile.write_text("")
    user, group, warning = default_unit_user(procfile, {"SUDO_USER": "nobody"})
    assert (user, warning) == ("nobody", None)
    assert group and group != "root"


def test_default_unit_user_falls_back_to_procfile_owner(tmp_path: Path) -> None:
    procfile = tmp_path / "procfile.toml"
    procfile.write_text("")
    me = pwd.getpwuid(os.getuid()).pw_name
    user, _, warning = default_unit_user(procfile, {"SUDO_USER": "no-such-user-xyz"})
    assert user == me
    assert (warning is not None) == (os.getuid() == 0)


@pytest.mark.skipif(os.getuid() != 0, reason="chown needs root")
def test_default_unit_user_warns_only_for_root(tmp_path: Path) -> None:
    procfile = tmp_path / "procfile.toml"
    procfile.write_text("")
    user, _, warning = default_unit_user(procfile, {})
    assert user == "root"
    assert warning and "--user" in warning and "useradd" in warning
    os.chown(procfile, pwd.getpwnam("nobody").pw_uid, -1)
    assert default_unit_user(procfile, {})[::2] == ("nobody", None)


def test_unit_install_path() -> None:
    assert unit_install_path("bots", False) == Path("/etc/systemd/system/bots.service")
    assert unit_install_path("bots", True, {"HOME": "/home/x"}) == Path("/home/x/.config/systemd/user/bots.service")
    assert unit_install_path("bots", True, {"XDG_CONFIG_HOME": "/cfg"}) == Path("/cfg/systemd/user/bots.service")


def test_install_unit_without_systemd_returns_the_commands(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "bots.service"
    todo = install_unit("[Unit]\n", path, False, booted=tmp_path / "not-booted", run=_no_run)
    assert path.read_text() == "[Unit]\n"
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert todo == ["systemctl daemon-reload", "systemctl enable --now bots"]


def test_install_user_unit_with_systemd_reloads_enables_and_asks_for_linger(tmp_path: Path) -> None:
    booted = tmp_path / "run-systemd-system"
    booted.mkdir()
    ran: list[list[str]] = []
    path = tmp_path / "user" / "bots.service"
    todo = install_unit("[Unit]\n", path, True, booted=booted, run=ran.append, linger_dir=tmp_path / "linger")
    assert ran == [["systemctl", "--user", "daemon-reload"], ["systemctl", "--user", "enable", "bots"]]
    me = pwd.getpwuid(os.getuid()).pw_name
    assert todo == ["systemctl --user start bots", f"loginctl enable-linger {me}"]
    (tmp_path / "linger").mkdir()
    (tmp_path / "linger" / me).touch()
    assert install_unit("[Unit]\n", path, True, booted=booted, run=ran.append, linger_dir=tmp_path / "linger") == [
        "systemctl --user start bots"
    ]


def _no_run(argv: list[str]) -> None:
    raise AssertionError(f"ran {argv} without systemd")


def _receiver(address: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(5)
    return sock


def test_notifier_sends_ready_status_watchdog_stopping(tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    with _receiver(path) as systemd:
        notifier = Notifier.from_env({"NOTIFY_SOCKET": path})
        assert notifier.ready(status="3 bots running")
        assert notifier.status("reloading\nprocfile")
        assert notifier.watchdog()
        assert notifier.stopping()
        got = [systemd.recv(4096).decode() for _ in range(4)]
        notifier.close()
    assert got == ["READY=1\nSTATUS=3 bots running", "STATUS=reloading procfile", "WATCHDOG=1", "STOPPING=1"]


def test_notifier_speaks_to_abstract_sockets() -> None:
    name = f"supctl-test-{os.getpid()}-{time.monotonic_ns()}"
    with _receiver("\0" + name) as systemd:
        notifier = Notifier(f"@{name}")
        assert notifier.ready()
        assert systemd.recv(4096) == b"READY=1"
        notifier.close()


def test_notifier_is_a_noop_without_systemd(tmp_path: Path) -> None:
    assert not Notifier.from_env({}).enabled
    assert Notifier.from_env({}).ready() is False
    gone = Notifier(str(tmp_path / "nobody-listens.sock"))
    assert gone.enabled and gone.watchdog() is False


def test_watchdog_interval_is_half_of_watchdog_usec() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}) == 15.0
    assert watchdog_interval({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid() + 1)}) is None
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None


def test_watchdog_pings_stop_while_the_event_loop_is_blocked(tmp_path: Path) -> None:
    interval, blocked_for = 0.02, 0.5
    path = str(tmp_path / "wd.sock")
    stamps: list[float] = []
    enough = threading.Event()
    wanted = 5

    def listen(sock: socket.socket) -> None:
        # Timestamps taken here, outside the event loop being measured.
        while True:
            try:
                message = sock.recv(64)
            except OSError:
                return
            if message == b"END=1":
                return
            stamps.append(time.monotonic())
            if len(stamps) >= wanted:
                enough.set()

    async def scenario() -> tuple[float, float]:
        nonlocal wanted
        loop_task = asyncio.create_task(watchdog_loop(Notifier(path), interval))
        assert await asyncio.to_thread(enough.wait, 5), "no pings before blocking"
        enough.clear()
        block_start = time.monotonic()
        time.sleep(blocked_for)  # the loop is wedged: nothing may be sent now
        block_end = time.monotonic()
        wanted = len(stamps) + 5
        assert await asyncio.to_thread(enough.wait, 5), "pings did not resume"
        loop_task.cancel()
        return block_start, block_end

    with _receiver(path) as systemd:
        listener = threading.Thread(target=listen, args=(systemd,), daemon=True)
        listener.start()
        block_start, block_end = asyncio.run(scenario())
        Notifier(path).notify(END=1)
        listener.join(5)
    during = [t for t in stamps if block_start + 0.05 < t < block_end]
    assert during == []
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    assert max(gaps) >= blocked_for - 0.05 > interval


def test_run_as_names_the_account_and_its_primary_group() -> None:
    nobody = pwd.getpwnam("nobody")
    assert named_unit_user("nobody") == ("nobody", grp.getgrgid(nobody.pw_gid).gr_name)
    assert named_unit_user("nobody:root") == ("nobody", "root")
    with pytest.raises(ValueError, match="no account named 'no-such-user-xyz'.*useradd --system"):
        named_unit_user("no-such-user-xyz")
    with pytest.raises(ValueError, match="no group named 'no-such-group-xyz'"):
        named_unit_user("nobody:no-such-group-xyz")


def _loaded(tmp_path: Path, text: str):
    from supervisor.config import procfile as config

    path = tmp_path / "procfile.toml"
    path.write_text(text)
    return config.load(str(path))


def test_unit_options_run_as_wins_and_is_refused_for_user_units(tmp_path: Path) -> None:
    from supervisor.systemd.options import unit_options

    procfile = _loaded(tmp_path, '[bots.a]\ncmd = "sleep 1"\n')
    opts, warning = unit_options(procfile, "bots", False, "daemon")
    assert (opts.user, warning) == ("daemon", None)
    assert "User=daemon\n" in render_unit(opts)
    assert "calls User=nobody unsafe" in (unit_options(procfile, "bots", False, "nobody")[1] or "")
    with pytest.raises(ValueError, match="system units only"):
        unit_options(procfile, "bots", True, "nobody")


def test_longest_stop_waits_for_task_runs_first(tmp_path: Path) -> None:
    from supervisor.systemd.options import longest_stop

    procfile = _loaded(tmp_path, '[bots.a]\ncmd = "sleep 1"\nstop_timeout = "20s"\n'
                                 '[tasks.backup]\ncmd = "true"\nevery = "1h"\nstop_timeout = "30s"\n'
                                 '[tasks.tick]\ncmd = "true"\nevery = "1m"\n')
    assert longest_stop(procfile) == 50.0
