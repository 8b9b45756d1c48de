"""The layering of docs/architecture.md, held by parsing imports: a pure core, one composition root, a light CLI.

core < config < {output, engine, jobs} < health < control < master < cli, checked per package and, where it
matters, over everything a package pulls in transitively.
"""

from __future__ import annotations

import ast
import sys
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "supervisor"

# What each part of supervisor/ may import from the others ("self" is always allowed).
BASE = {"core"}
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "plugin": {"core"},
    "config": BASE | {"bus"},  # bus.topics only: the topic grammar `[bus.nats]` export/import patterns follow
    "output": BASE | {"config"},
    "engine": BASE | {"config", "output", "plugin"},
    "jobs": BASE | {"config", "output", "engine"},
    "health": BASE | {"config", "output", "engine", "plugin", "bus"},
    "bus": BASE,
    "systemd": BASE | {"config"},
    "control": BASE | {"config", "output", "engine", "jobs", "health", "plugin", "bus"},
    "http": BASE | {"config", "output", "engine", "jobs", "health", "bus", "control", "__init__"},
    "bridge": BASE | {"config", "bus", "control", "__init__"},
    "master": BASE | {"config", "output", "engine", "jobs", "health", "plugin", "bus", "systemd", "control",
                      "http", "bridge", "__init__"},
    "cli": BASE | {"config", "output", "control", "systemd", "master", "health", "bus", "bridge", "__init__"},
    "__main__": {"cli"},
    "__init__": set(),
}
BUS_CLIENT = {"client", "stream", "blocking", "state", "outbox", "subscription", "waits", "eager", "frames", "topics", "__init__"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def walk_runtime(tree: ast.AST):
    """ast.walk without `if TYPE_CHECKING:` bodies: those imports never run."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))


def imports_of(path: Path) -> set[str]:
    """Absolute module names imported anywhere in the file (relative imports resolved), names included."""
    tree = ast.parse(path.read_text())
    pkg = ".".join(path.relative_to(ROOT).parts[:-1]) if path.is_relative_to(PKG) else "supervisor.plugins"
    out: set[str] = set()
    for node in walk_runtime(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg.rsplit(".", node.level - 1)[0] if node.level > 1 else pkg
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            out.add(mod)
            out.update(f"{mod}.{a.name}" for a in node.names)
    return out


def part_of(name: str) -> str | None:
    """'supervisor.engine.spawn' -> 'engine'; 'supervisor' itself -> '__init__'; not ours -> None."""
    parts = name.split(".")
    if parts[0] != "supervisor":
        return None
    return parts[1] if len(parts) > 1 else "__init__"


SOURCES = {module_name(p): p for p in PKG.rglob("*.py")}


def ours(names: set[str]) -> set[str]:
    """The supervisor modules among imported names (a from-import of a name maps to its module)."""
    return {n if n in SOURCES else n.rpartition(".")[0] for n in names if n.startswith("supervisor")} & SOURCES.keys()


@cache
def closure(name: str) -> frozenset[str]:
    """Every name a module imports, following our own modules transitively."""
    seen: set[str] = set()
    todo = [name]
    found: set[str] = set()
    while todo:
        cur = todo.pop()
        if cur in seen:
            continue
        seen.add(cur)
        names = imports_of(SOURCES[cur])
        found |= names
        todo.extend(ours(names) - seen)
    return frozenset(found)


def test_every_part_of_supervisor_has_a_rule() -> None:
    parts = {part_of(m) for m in SOURCES}
    assert parts <= ALLOWED.keys(), parts - ALLOWED.keys()


def test_packages_import_only_the_layers_below() -> None:
    wrong = []
    for name, path in SOURCES.items():
        me = part_of(name)
        for dep in ours(imports_of(path)):
            other = part_of(dep)
            if other != me and other not in ALLOWED[me]:
                wrong.append(f"{name} imports {dep}")
    assert not wrong, "\n".join(wrong)


def test_engine_health_and_jobs_never_reach_control_even_indirectly() -> None:
    for name in SOURCES:
        if part_of(name) in ("engine", "health", "jobs", "output", "config", "core"):
            reached = {part_of(m) for m in ours(set(closure(name)))}
            assert not reached & {"control", "master", "cli"}, name


def test_core_imports_only_the_stdlib() -> None:
    for name in SOURCES:
        if part_of(name) == "core":
            outside = {n.split(".")[0] for n in closure(name)} - {"supervisor"}
            assert outside <= set(sys.stdlib_module_names) | {"__future__"}, (name, outside)


def test_config_imports_no_loop_process_or_logging_machinery() -> None:
    for name in SOURCES:
        if part_of(name) == "config":
            found = {n.split(".")[0] for n in closure(name)}
            assert not found & {"asyncio", "logging", "subprocess", "uvloop", "psutil", "socket"}, name


def test_the_plugin_api_imports_only_core() -> None:
    assert {part_of(m) for m in ours(set(closure("supervisor.plugin")))} <= {"core", "__init__"}


def test_the_bus_client_half_imports_nothing_from_the_master_side() -> None:
    for leaf in BUS_CLIENT:
        name = "supervisor.bus" if leaf == "__init__" else f"supervisor.bus.{leaf}"
        reached = ours(set(closure(name)))
        wrong = {m for m in reached if part_of(m) not in ("bus", "core", "__init__")
                 or (part_of(m) == "bus" and m.rpartition(".")[2] not in BUS_CLIENT and m != "supervisor.bus")}
        assert not wrong, (name, wrong)


def test_nothing_imports_master_or_cli_but_the_entry_points() -> None:
    for name, path in SOURCES.items():
        if part_of(name) in ("cli", "__main__"):
            continue
        found = {part_of(m) for m in ours(imports_of(path))} - {part_of(name)}
        assert not found & {"master", "cli"}, name


def test_bundled_plugins_use_only_the_public_plugin_api() -> None:
    import supervisor.plugin

    allowed = {"supervisor.plugin"} | {f"supervisor.plugin.{n}" for n in dir(supervisor.plugin)}
    for path in (ROOT / "plugins").glob("*.py"):
        theirs = {m for m in imports_of(path) if m.startswith("supervisor") and not m.startswith("supervisor.plugins")}
        assert theirs <= allowed, path


def test_no_module_over_400_lines() -> None:
    for path in [*PKG.rglob("*.py"), *(ROOT / "plugins").glob("*.py")]:
        assert len(path.read_text().splitlines()) <= 400, path


def test_supervisor_has_at_most_16_entries() -> None:
    entries = [p for p in PKG.iterdir() if p.name != "__pycache__"]
    assert len(entries) <= 16, sorted(p.name for p in entries)


def test_config_reaches_only_the_topic_grammar_of_the_bus() -> None:
    for name in SOURCES:
        if part_of(name) == "config":
            reached = {m for m in ours(set(closure(name))) if part_of(m) == "bus"}
            assert reached <= {"supervisor.bus.topics"}, (name, reached)


def test_only_the_bridge_imports_nats() -> None:
    for name, path in SOURCES.items():
        if part_of(name) != "bridge":
            assert not {n for n in imports_of(path) if n == "nats" or n.startswith("nats.")}, name


def test_every_package_is_in_the_wheel() -> None:
    """pyproject lists packages by hand; a package left out works in an editable install and is missing from a real one."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {module_name(p) for p in PKG.rglob("__init__.py")}
    assert found <= listed, found - listed
