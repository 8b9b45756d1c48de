"""`supctl validate`: every error on stderr, exit 1; a one-line summary and exit 0 when valid."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from supervisor.cli.main import main

GOOD = '[bots.feed]\ncmd = "f"\n[bots.trader]\ncmd = "t"\ninstances = 2\ndepends_on = ["feed"]\n'
BAD = '[bots.trader]\ncmd = "t"\ninstances = "two"\ndepends_on = ["fed"]\nrestrat = "always"\n'


def test_validate_ok_exit_0_and_one_line_summary(tmp_path: Path, capsys):
    f = tmp_path / "procfile.toml"
    f.write_text(GOOD)
    assert main(["validate", str(f)]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"{f}: ok, 2 bots, 3 instances"]
    assert err == ""


def test_validate_errors_exit_1_each_naming_file_and_key(tmp_path: Path, capsys):
    f = tmp_path / "procfile.toml"
    f.write_text(BAD)
    assert main(["validate", str(f)]) == 1
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert out == ""
    assert lines[-1] == f"{f}: 3 errors"
    assert sorted(lines[:-1]) == sorted([
        f"{f}: bots.trader.instances: expected an integer, found string 'two'",
        f"{f}: bots.trader.depends_on[0]: unknown bot 'fed'",
        f"{f}: bots.trader.restrat: unknown key (did you mean 'restart'?)",
    ])


def test_validate_syntax_error_line_and_column(tmp_path: Path, capsys):
    f = tmp_path / "procfile.toml"
    f.write_text('[bots.a]\ncmd = = "x"\n')
    assert main(["validate", str(f)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{f}:2:7: TOML syntax error")


def test_validate_as_a_command_with_default_and_env_procfile(tmp_path: Path):
    (tmp_path / "procfile.toml").write_text(GOOD)
    (tmp_path / "other.toml").write_text(BAD)
    run = lambda *a, **env: subprocess.run([sys.executable, "-m", "supervisor.cli.main", *a], cwd=tmp_path,  # noqa: E731
                                           capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", **env})
    ok = run("validate")
    assert (ok.returncode, ok.stdout) == (0, "procfile.toml: ok, 2 bots, 3 instances\n")
    bad = run("validate", SUPCTL_PROCFILE="other.toml")
    assert bad.returncode == 1 and bad.stderr.strip().endswith("other.toml: 3 errors")
    bad = run("validate", "-c", "other.toml")
    assert bad.returncode == 1
    missing = run("validate", "nope.toml")
    assert missing.returncode == 1 and "nope.toml: cannot read" in missing.stderr


def test_validate_with_config_option_before_the_verb(tmp_path: Path, capsys):
    (tmp_path / "other.toml").write_text(BAD)
    assert main(["-c", str(tmp_path / "other.toml"), "validate"]) == 1


def test_validate_refuses_reserved_bot_name_supctl(tmp_path: Path, capsys):
    f = tmp_path / "procfile.toml"
    f.write_text('[bots.supctl]\ncmd = "x"\n[bots.ok]\ncmd = "y"\n')
    assert main(["validate", str(f)]) == 1
    _, err = capsys.readouterr()
    assert f"{f}: bots.supctl: the name 'supctl' is reserved for the master (its bus identity); rename the bot" in err
