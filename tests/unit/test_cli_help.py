"""Every verb explains itself: help on each positional and option, examples at the end, and shell completion."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys

import pytest

from supervisor.cli.completion import script
from supervisor.cli.main import EXAMPLES, build_parser


def parsers(p: argparse.ArgumentParser, name: str = "supctl"):
    yield name, p
    for a in p._actions:
        if isinstance(a, argparse._SubParsersAction):
            for sub_name, sub in a.choices.items():
                yield from parsers(sub, f"{name} {sub_name}")


def test_every_positional_and_option_has_a_help_line() -> None:
    missing = [f"{name}: {a.dest}" for name, p in parsers(build_parser()) for a in p._actions
               if not isinstance(a, argparse._SubParsersAction) and not a.help]
    assert not missing, missing


def test_every_verb_ends_its_help_with_examples() -> None:
    p = build_parser()
    verbs = {name.split()[1] for name, _ in parsers(p) if len(name.split()) == 2} - {"list"}
    assert verbs == set(EXAMPLES)
    for verb in verbs:
        text = subprocess.run([sys.executable, "-m", "supervisor.cli.main", verb, "--help"], capture_output=True,
                              text=True, check=True).stdout
        examples = text.split("examples:\n", 1)[1].splitlines()
        assert 1 <= len(examples) <= 4 and all(e.startswith("  supctl ") or e.startswith("  sudo supctl")
                                               or e.startswith("  kill ") for e in examples), (verb, examples)


def test_top_level_help_shows_config_and_json() -> None:
    text = subprocess.run([sys.executable, "-m", "supervisor.cli.main", "--help"], capture_output=True, text=True,
                          check=True).stdout
    assert "-c PROCFILE, --config PROCFILE" in text and "--json" in text and "-V, --version" in text


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completion_is_valid_bash_and_completes_verbs_and_options(tmp_path) -> None:
    (tmp_path / "c.sh").write_text(script("bash", build_parser()))
    probe = ('source c.sh; COMP_WORDS=(supctl st); COMP_CWORD=1; _supctl; echo "${COMPREPLY[@]}"; '
             'COMP_WORDS=(supctl logs --e); COMP_CWORD=2; _supctl; echo "${COMPREPLY[@]}"')
    out = subprocess.run(["bash", "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    first, second = out.splitlines()
    assert set(first.split()) == {"start", "stop", "status"}
    assert second.split() == ["--err"]


def test_zsh_and_fish_scripts_name_every_verb() -> None:
    p = build_parser()
    for shell in ("zsh", "fish"):
        text = script(shell, p)
        assert all(verb in text for verb in EXAMPLES), shell
    assert "complete -c supctl -n '__fish_seen_subcommand_from logs' -l err" in script("fish", p)


def test_nodaemonize_is_foreground() -> None:
    """supervisord's and the second guide's habit: --nodaemonize is -f."""
    from supervisor.cli.main import build_parser

    assert build_parser().parse_args(["start", "--nodaemonize"]).foreground
    assert not build_parser().parse_args(["start"]).foreground


def test_a_verb_alone_parses_and_helps_as_in_the_whole_parser() -> None:
    """`supctl VERB` builds only VERB's parser: its help and its parse must be the ones of the full parser."""
    from supervisor.cli.main import verb_of

    full = build_parser()
    for name, p in full._subparsers._group_actions[0].choices.items():  # type: ignore[union-attr]
        alone = build_parser(only=name)._subparsers._group_actions[0].choices  # type: ignore[union-attr]
        assert alone[name].format_help() == p.format_help(), name
        assert set(alone) <= {name, *EXAMPLES, "list"} and len({id(v) for v in alone.values()}) == 1, (name, set(alone))
    assert build_parser(only="status").parse_args(["-c", "x.toml", "status", "web", "--json"]) == \
        full.parse_args(["-c", "x.toml", "status", "web", "--json"])
    assert verb_of(["-c", "status", "logs", "-f"]) == "logs" and verb_of(["--json", "list"]) == "list"
    assert verb_of(["-h", "status"]) is None and verb_of(["stauts"]) is None and verb_of([]) is None


def test_completion_through_main_completes_every_verb(capsys) -> None:
    """`supctl completion bash` builds only its own verb's parser to run; the script it prints knows every verb."""
    from supervisor.cli.main import main

    assert main(["completion", "bash"]) == 0
    out = capsys.readouterr().out
    assert all(verb in out for verb in ("status", "describe", "kill-switch", "fleet", "logs")), out[:500]


def test_a_quick_verb_exits_with_its_code_and_every_line_written(tmp_path) -> None:
    """run() skips the interpreter's teardown for the QUICK verbs: their output must still be flushed, their exit
    status kept."""
    from supervisor.cli.main import QUICK

    assert QUICK <= {*EXAMPLES, "list"}
    (tmp_path / "procfile.toml").write_text('[bots.a]\ncmd = "true"\n')
    out = subprocess.run([sys.executable, "-m", "supervisor.cli.main", "-c", str(tmp_path / "procfile.toml"), "status", "--json"],
                         capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 1 and json.loads(out.stderr)["error"].startswith("no master is running"), out
