"""`supctl completion bash|zsh|fish`: a script generated from the argument parser, so it never goes stale.

Loaded only by that verb: ordinary calls pay nothing for completion.
"""

from __future__ import annotations

import argparse


def _verbs(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> list[str]:
    return [o for a in parser._actions for o in a.option_strings]


def _choices(parser: argparse.ArgumentParser) -> list[str]:
    """Fixed words a verb takes: positional choices (bash, on/off) and sub-verbs (bus pub, fleet status)."""
    words: list[str] = []
    for a in parser._actions:
        if not a.option_strings and a.choices:
            words += list(a.choices)
    return words


def _help(parser: argparse.ArgumentParser, name: str) -> str:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                if choice.dest == name:
                    return choice.help or ""
    return ""


def bash(parser: argparse.ArgumentParser) -> str:
    verbs = _verbs(parser)
    cases = "\n".join(f'    {name}) words="{" ".join(_options(sub) + _choices(sub))}";;' for name, sub in verbs.items())
    return f'''# supctl completion for bash: eval "$(supctl completion bash)", or save it as a completions file
_supctl() {{
  local cur=${{COMP_WORDS[COMP_CWORD]}} verb="" words i
  for ((i = 1; i < COMP_CWORD; i++)); do
    case ${{COMP_WORDS[i]}} in
      -c|--config) ((i++));;
      -*) ;;
      *) verb=${{COMP_WORDS[i]}}; break;;
    esac
  done
  if [[ -z $verb ]]; then
    words="{" ".join(verbs)} {" ".join(_options(parser))}"
  else
    case $verb in
{cases}
    esac
  fi
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}}
complete -o default -F _supctl supctl
'''


def zsh(parser: argparse.ArgumentParser) -> str:
    return "#compdef supctl\n# supctl completion for zsh (through bashcompinit)\nautoload -U +X bashcompinit && bashcompinit\n" \
        + bash(parser).split("\n", 1)[1]


def fish(parser: argparse.ArgumentParser) -> str:
    verbs = _verbs(parser)
    out = ["# supctl completion for fish", "complete -c supctl -f"]
    for name in verbs:
        out.append(f"complete -c supctl -n __fish_use_subcommand -a {name} -d {_quote(_help(parser, name))}")
    for name, sub in verbs.items():
        for a in sub._actions:
            for o in a.option_strings:
                flag = f"-l {o[2:]}" if o.startswith("--") else f"-s {o[1:]}"
                out.append(f"complete -c supctl -n '__fish_seen_subcommand_from {name}' {flag} -d {_quote(a.help or '')}")
        for word in _choices(sub):
            out.append(f"complete -c supctl -n '__fish_seen_subcommand_from {name}' -a {word}")
    return "\n".join(out) + "\n"


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def script(shell: str, parser: argparse.ArgumentParser) -> str:
    return {"bash": bash, "zsh": zsh, "fish": fish}[shell](parser)
