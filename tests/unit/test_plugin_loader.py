"""Loader: discovery, option validation and every error naming file and dotted key."""

from __future__ import annotations

import ast
import importlib.metadata
import tomllib
from pathlib import Path

import pytest

from supervisor.core.errors import ConfigError, ConfigErrors, PluginError
from supervisor.health.loader import load_registry, parse_health, validate_class
from supervisor.health.testing import BUNDLED, bundled_entry_points

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def registry():
    return load_registry([], ROOT, "procfile.toml", entry_points=bundled_entry_points())


def error(raw, registry) -> ConfigError:
    """The first of the errors parse_health reports (it reports every bad table at once)."""
    with pytest.raises(ConfigErrors) as info:
        parse_health("procfile.toml", "api", raw, registry)
    return info.value.errors[0]


def test_bad_option_type_names_dotted_key(registry):
    e = error([{"check": "http", "url": 8080}], registry)
    assert (e.file, e.key) == ("procfile.toml", "bots.api.health[0].url")
    assert "$" not in str(e) and e.message == "expected a string, found integer 8080"


def test_bad_option_value_from_post_init_names_the_option(registry):
    e = error([{"check": "tcp", "port": 1}, {"check": "http", "url": "ftp://x"}], registry)
    assert e.key == "bots.api.health[1].url" and "http://" in e.message


def test_missing_required_option(registry):
    assert error([{"check": "http"}], registry).key == "bots.api.health[0].url"


def test_unknown_check_name_suggests_closest(registry):
    e = error([{"check": "htp", "url": "http://x"}], registry)
    assert e.key == "bots.api.health[0].check"
    assert "did you mean 'http'?" in e.message and "tcp" in e.message


def test_unknown_option_suggests_option_or_common_key(registry):
    assert "did you mean 'url'?" in error([{"check": "http", "ulr": "http://x"}], registry).message
    e = error([{"check": "tcp", "port": 1, "evry": "1s"}], registry)
    assert e.key == "bots.api.health[0].evry" and "did you mean 'every'?" in e.message


def test_common_keys_are_validated(registry):
    assert error([{"check": "tcp", "port": 1, "every": "soon"}], registry).key == "bots.api.health[0].every"
    assert error([{"check": "tcp", "port": 1, "failures": 0}], registry).key == "bots.api.health[0].failures"
    assert error([{"check": "memory", "max_rss": 500}], registry).key == "bots.api.health[0].max_rss"


def test_nested_recovery_errors_name_their_full_path(registry):
    raw = [{"check": "tcp", "port": 1, "recover": {"name": "escalate",
                                                     "steps": ["restart", ["stop", {"name": "webhook", "url": 3}]]}}]
    assert error(raw, registry).key == "bots.api.health[0].recover.steps[1][1].url"
    raw = [{"check": "tcp", "port": 1, "recover": {"name": "circuit_breaker", "recover": "restat"}}]
    e = error(raw, registry)
    assert e.key == "bots.api.health[0].recover.recover" and "did you mean 'restart'?" in e.message
    raw = [{"check": "tcp", "port": 1, "recover": {"name": "signal", "signal": "NOPE"}}]
    assert error(raw, registry).key == "bots.api.health[0].recover.signal"


def test_defaults_and_parsed_values(registry):
    [spec] = parse_health("p.toml", "api", [{"check": "tcp", "port": 9, "recover": ["stop", "restart"]}], registry)
    assert (spec.every, spec.timeout, spec.failures, spec.key) == (10.0, 5.0, 3, "bots.api.health[0]")
    assert spec.recover is not None and spec.recover.label == "stop + restart"
    assert spec.create() is not spec.create()  # each instance gets its own plugin state


def test_plugin_path_file_and_folder_are_loaded(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "ping.py").write_text(PING)
    registry = load_registry(["mine"], tmp_path, entry_points=[])
    assert registry.names("check") == ["ping"]
    assert "ping.py" in registry.origin("check", "ping")
    [spec] = parse_health("p.toml", "api", [{"check": "ping", "every": "1s"}], registry)
    assert spec.check == "ping"


def test_plugin_path_that_fails_to_import_is_a_config_error(tmp_path):
    (tmp_path / "broken.py").write_text("import no_such_module_anywhere\n")
    with pytest.raises(ConfigError) as info:
        load_registry(["broken.py"], tmp_path, "p.toml", entry_points=[])
    e = info.value
    assert e.key == "supervisor.plugin_paths[0]"
    assert "broken.py" in e.message and "ModuleNotFoundError" in e.message
    with pytest.raises(ConfigError, match="no such file"):
        load_registry(["missing.py"], tmp_path, entry_points=[])


def test_broken_entry_point_fails_only_the_procfile_that_uses_it(registry):
    eps = [*bundled_entry_points(), importlib.metadata.EntryPoint("check.broken", "no_such_pkg.mod:Check", "supctl.plugins")]
    reg = load_registry([], ROOT, entry_points=eps)
    parse_health("p.toml", "api", [{"check": "tcp", "port": 1}], reg)
    e = error([{"check": "broken"}], reg)
    assert "check.broken = no_such_pkg.mod:Check" in e.message
    assert "ModuleNotFoundError" in e.message


def test_path_plugin_cannot_shadow_an_entry_point(tmp_path):
    (tmp_path / "tcp.py").write_text(PING.replace('name = "ping"', 'name = "tcp"'))
    with pytest.raises(ConfigError, match="already provided by entry point 'check.tcp"):
        load_registry(["tcp.py"], tmp_path, entry_points=bundled_entry_points())


def test_malformed_plugin_classes_are_rejected():
    import msgspec

    from supervisor.plugin import HealthCheck

    class Opts(msgspec.Struct):
        pass

    class AsyncButBlocking(HealthCheck):
        name = "x"
        Options = Opts
        blocking = True

        async def check(self, ctx):
            raise NotImplementedError

    class DictOptions(HealthCheck):
        name = "x"
        Options = dict  # type: ignore[assignment]

        async def check(self, ctx):
            raise NotImplementedError

    with pytest.raises(PluginError, match="must be a plain def"):
        validate_class("check", AsyncButBlocking, "x")
    with pytest.raises(PluginError, match="Options must be a msgspec.Struct"):
        validate_class("check", DictOptions, "x")
    with pytest.raises(PluginError, match="name is 'x', expected 'y'"):
        validate_class("check", AsyncButBlocking, "y")


def test_every_bundled_entry_point_loads():
    registry = load_registry([], ROOT, entry_points=bundled_entry_points())
    for name in BUNDLED:
        kind, _, plugin = name.partition(".")
        assert registry.get(kind, plugin, "p.toml", name).name == plugin


def test_pyproject_declares_the_bundled_entry_points():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project.get("entry-points", {}).get("supctl.plugins")
    if declared is None:
        pytest.skip("pyproject.toml has no [project.entry-points.\"supctl.plugins\"] table yet")
    assert declared == BUNDLED


def test_bundled_plugins_import_only_the_public_api():
    allowed_supervisor = {"supervisor.plugin"}
    for path in sorted((ROOT / "plugins").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            for name in names:
                if name.startswith("supervisor"):
                    assert name in allowed_supervisor, f"{path.name} imports {name}"


PING = '''
import msgspec
from supervisor.plugin import HealthCheck, Result

class PingOptions(msgspec.Struct, forbid_unknown_fields=True):
    pass

class Ping(HealthCheck):
    name = "ping"
    Options = PingOptions

    async def check(self, ctx):
        return Result.ok("pong")
'''


def test_a_plugin_without_options_may_omit_them_and_rejects_any(tmp_path: Path):
    (tmp_path / "bare.py").write_text(
        "from supervisor.plugin import CheckContext, HealthCheck, Result\n"
        "class Bare(HealthCheck):\n"
        "    name = 'bare'\n"
        "    async def check(self, ctx: CheckContext) -> Result:\n"
        "        return Result.ok()\n")
    registry = load_registry(["bare.py"], tmp_path, entry_points=[])
    assert parse_health("p.toml", "api", [{"check": "bare"}], registry)[0].check == "bare"
    with pytest.raises(ConfigErrors, match=r"bots.api.health\[0\].path: unknown option; this plugin takes no options"):
        parse_health("p.toml", "api", [{"check": "bare", "path": "/x"}], registry)
