"""The dependency arrows of DESIGN.md, held by parsing imports: a pure core, one composition root, a light CLI."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "supervisor"


def imports_of(path: Path) -> set[str]:
    """Absolute module names imported anywhere in the file (relative imports resolved against supervisor)."""
    tree = ast.parse(path.read_text())
    if not path.is_relative_to(PKG):
        pkg = "supervisor.plugins"
    else:
        pkg = ".".join(["supervisor", *path.relative_to(PKG).parts[:-1]])
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.rsplit(".", node.level - 1)[0] if node.level > 1 else pkg
                mod = f"{base}.{node.module}" if node.module else base
                out.add(mod)
                out.update(f"{mod}.{a.name}" for a in node.names)
            else:
                out.add(node.module or "")
    return out


def module(name: str) -> Path:
    return PKG / f"{name}.py"


def top(names: set[str]) -> set[str]:
    return {n.split(".")[0] for n in names}


def test_states_imports_only_the_stdlib() -> None:
    assert top(imports_of(module("states"))) <= set(sys.stdlib_module_names) | {"__future__"}


def test_pure_core_does_no_process_or_loop_work() -> None:
    for name in ("errors", "states", "backoff", "units", "tables", "config_base", "config", "task_config", "reload"):
        found = imports_of(module(name))
        assert not found & {"asyncio", "subprocess", "uvloop", "psutil", "socket"}, name
        assert not {m for m in found if m.startswith("supervisor.") and m.split(".")[1] in
                    {"process", "bot", "master", "cli", "control_server", "fleet", "spawn"}}, name


def test_nothing_imports_master_or_cli_but_the_entry_points() -> None:
    for path in PKG.rglob("*.py"):
        if path.name in ("cli.py", "master.py"):
            continue
        found = imports_of(path)
        assert not found & {"supervisor.master", "supervisor.cli"}, path


def test_bundled_plugins_use_only_the_public_plugin_api() -> None:
    for path in (ROOT / "plugins").glob("*.py"):
        ours = {m for m in imports_of(path) if m.startswith("supervisor")}
        assert ours <= {"supervisor.plugin"} | {f"supervisor.plugin.{n}" for n in dir(__import__("supervisor.plugin").plugin)}, path


def test_no_module_much_past_400_lines() -> None:
    for path in [*PKG.rglob("*.py"), *(ROOT / "plugins").glob("*.py")]:
        assert len(path.read_text().splitlines()) <= 440, path
