"""Fuzz the HTTP API from its own /openapi.json: every operation, odd path and query values, schema-valid and
junk bodies, with and without the token. No answer may be a 5xx, documented JSON replies match their schema,
and the master is still running and answering afterwards."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from urllib.parse import quote

import httpx
import jsonschema
import pytest
from harness import Master, bot, toml_argv
from http_helpers import HTTP, auth, base_url
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

STREAMS = {"/events"}
"""Endless by design; /logs is fuzzed without follow for the same reason."""


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory):
    m = Master(tmp_path_factory.mktemp("fuzz"), f'''
        [supervisor]
        state_dir = "state"
        {HTTP}
        [bots.steady]
        cmd = {toml_argv(bot("sleeper"))}
        start_grace = "100ms"
        stop_timeout = "2s"
        [bots.crashy]
        cmd = {toml_argv(bot("crasher"))}
        start_grace = "100ms"
        backoff = {{ initial = "1s" }}
    ''', uuid.uuid4().hex).start()
    m.wait_transition("steady:0", "RUNNING")
    yield m
    left = m.cleanup()
    assert not left, left


def operations(spec: dict) -> list[tuple[str, str, dict]]:
    return [(path, method, op) for path, item in spec["paths"].items() if path not in STREAMS
            for method, op in item.items()]


def from_schema(schema: dict) -> st.SearchStrategy[object]:
    """Values a (simple) JSON Schema allows: the spec's parameters and bodies use only these forms."""
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    if kind == "boolean":
        return st.booleans()
    if kind == "string":
        return st.text(max_size=50)
    if kind == "object":
        props = {k: from_schema(v) for k, v in schema["properties"].items()}
        required = set(schema.get("required", []))
        return st.fixed_dictionaries({k: v for k, v in props.items() if k in required},
                                     optional={k: v for k, v in props.items() if k not in required})
    raise AssertionError(f"no strategy for {schema}")


def value(schema: dict) -> st.SearchStrategy[str]:
    """A query or path value: one the schema allows, or any text at all."""
    return st.one_of(from_schema(schema).map(lambda v: json.dumps(v) if not isinstance(v, str) else v),
                     st.text(max_size=20), st.sampled_from(["steady", "crashy", "steady:0", "-1", "1e9", ""]))


def request(spec: dict, path: str, method: str, op: dict) -> st.SearchStrategy[dict]:
    params = {p["name"]: p for p in op.get("parameters", [])}
    path_parts = {n: value(p["schema"]) for n, p in params.items() if p["in"] == "path"}
    query = {n: value(p["schema"]) for n, p in params.items() if p["in"] == "query" and n != "follow"}
    body = st.just(None)
    if "requestBody" in op:
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        resolved = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
        body = st.one_of(from_schema(resolved).map(lambda b: json.dumps(b).encode()), st.binary(max_size=200),
                         st.just(b""))
    return st.fixed_dictionaries({
        "path": st.fixed_dictionaries(path_parts), "query": st.fixed_dictionaries({}, optional=query),
        "body": body, "token": st.sampled_from(["none", "wrong", "right"]),
    }).map(lambda r: {**r, "op": (path, method, op)})


def check_reply(spec: dict, op: dict, r: httpx.Response) -> None:
    assert r.status_code < 500 or str(r.status_code) in op["responses"], f"{r.request.method} {r.request.url}: {r.status_code} {r.text[:300]}"
    doc = op["responses"].get(str(r.status_code))
    assert doc is not None or r.status_code in (404, 405), f"undocumented {r.status_code} for {r.request.url}"
    schema = (doc or {}).get("content", {}).get("application/json", {}).get("schema")
    if schema is not None:
        jsonschema.validate(r.json(), {**schema, "components": spec["components"]})


def test_fuzz_the_api_from_its_openapi(fleet: Master) -> None:
    url = base_url(fleet)
    spec = httpx.get(f"{url}/openapi.json").json()
    jsonschema.Draft202012Validator.check_schema({"components": spec["components"]})
    ops = st.one_of([request(spec, *o) for o in operations(spec)])
    client = httpx.Client(base_url=url, timeout=60)
    headers = {"none": {}, "wrong": {"Authorization": "Bearer " + "x" * 43}, "right": auth(fleet)}

    @settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
    @given(ops)
    def one(req: dict) -> None:
        path, method, op = req["op"]
        for name, v in req["path"].items():
            path = path.replace("{" + name + "}", quote(v, safe=""))
        r = client.request(method.upper(), path, params=req["query"], content=req["body"],
                           headers=headers[req["token"]])
        if req["token"] != "right" and op.get("security"):
            assert r.status_code in (401, 404), r.text
        check_reply(spec, op, r)

    one()
    assert fleet.proc is not None and fleet.proc.poll() is None
    assert client.get("/health/steady").status_code in (200, 503)
    assert fleet.ctl("status").returncode == 0
    client.close()


def test_the_spec_names_every_route(fleet: Master) -> None:
    spec = httpx.get(f"{base_url(fleet)}/openapi.json").json()
    assert set(spec["paths"]) == {"/", "/health", "/health/{bot}", "/status", "/metrics", "/events", "/logs/{bot}",
                                  "/openapi.json", "/kill-switch", "/bots/{bot}/start", "/bots/{bot}/stop",
                                  "/bots/{bot}/restart", "/reload"}
    docs = Path(__file__).parents[2].joinpath("docs", "http.md").read_text()
    for path in spec["paths"]:
        assert path.replace("{bot}", "<bot>").removesuffix("/stop").removesuffix("/restart") in docs, path
