"""GET /openapi.json: the API described, its reply schemas generated from the control protocol's Structs."""

from __future__ import annotations

from functools import cache
from typing import Any

import msgspec

from .. import __version__
from ..control.protocol import ActionReply, KillSwitchReply, KillSwitchStatus, ReloadReply
from ..control.views import StatusView

REF = "#/components/schemas/{name}"


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(name=name)}


ERROR = _json(_ref("Problem"), "an error, named")
UNAUTHORIZED = {"401": _json(_ref("Problem"), "missing or wrong bearer token; nothing changed")}
BOT = {"name": "bot", "in": "path", "required": True, "schema": {"type": "string"}}
HEALTH = {"200": _json(_ref("Health"), "every instance that should run is RUNNING and not unhealthy"),
          "503": _json(_ref("Health"), "something is wrong; `problems` names it")}


def _components() -> dict[str, Any]:
    _, found = msgspec.json.schema_components([StatusView, KillSwitchStatus, ActionReply, ReloadReply,
                                               KillSwitchReply], ref_template=REF)
    for schema in found.values():  # the wire tag does not go over HTTP
        schema.get("properties", {}).pop("op", None)
        required = [r for r in schema.pop("required", []) if r != "op"]
        if required:
            schema["required"] = required
    problem = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
    item = {"type": "object", "required": ["bot", "instance", "state", "reason"],
            "properties": {"bot": {"type": "string"}, "instance": {"type": "integer"}, "state": {"type": "string"},
                           "reason": {"type": "string"}}}
    health = {"type": "object", "required": ["ok", "instances", "problems", "kill_switch"],
              "properties": {"ok": {"type": "boolean"}, "instances": {"type": "integer"},
                             "problems": {"type": "array", "items": item}, "kill_switch": _ref("KillSwitchStatus")}}
    body = {"type": "object", "required": ["activate"], "additionalProperties": False,
            "properties": {"activate": {"type": "boolean"}, "reason": {"type": "string"}}}
    return {**found, "Problem": problem, "Health": health, "KillSwitchBody": body}


def _action(verb: str) -> dict[str, Any]:
    return {"post": {
        "summary": f"{verb} every instance of a bot, or one with ?instance=k", "security": [{"bearer": []}],
        "parameters": [BOT, {"name": "instance", "in": "query", "schema": {"type": "integer", "minimum": 0}}],
        "responses": {"200": _json(_ref("ActionReply"), "done"), "400": ERROR, "404": ERROR, **UNAUTHORIZED,
                      "409": _json(_ref("ActionReply"), "not every instance reached the state (or the kill switch "
                                   "refused it); `message` says where each is")}}}


@cache
def spec() -> dict[str, Any]:
    text = {"description": "plain text", "content": {"text/plain": {"schema": {"type": "string"}}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "supctl master", "version": __version__,
                 "description": "The master's HTTP API; docs/http.md explains every endpoint and metric."},
        "components": {"schemas": _components(),
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": {
            "/": {"get": {"summary": "the live dashboard", "responses": {"200": {"description": "an HTML page"}}}},
            "/health": {"get": {"summary": "every autostart bot RUNNING and not unhealthy?", "responses": HEALTH}},
            "/health/{bot}": {"get": {"summary": "one bot RUNNING and not unhealthy?", "parameters": [BOT],
                                      "responses": {**HEALTH, "404": ERROR}}},
            "/status": {"get": {
                "summary": "the same JSON as `supctl status --json`",
                "parameters": [{"name": "target", "in": "query", "schema": {"type": "string"},
                                "description": "all, NAME or NAME:k"}],
                "responses": {"200": _json(_ref("StatusView"), "the master and every instance"),
                              "404": ERROR}}},
            "/metrics": {"get": {"summary": "Prometheus text exposition", "responses": {"200": text}}},
            "/events": {"get": {"summary": "Server-Sent Events: process, health and kill-switch changes",
                                "responses": {"200": {"description": "text/event-stream"}}}},
            "/logs/{bot}": {"get": {
                "summary": "the last lines of a bot's logs; with follow=1 new lines as they are written",
                "parameters": [BOT, {"name": "instance", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                               {"name": "lines", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": 10000}},
                               {"name": "follow", "in": "query", "schema": {"type": "string", "enum": ["0", "1"]}}],
                "responses": {"200": text, "400": ERROR, "404": ERROR}}},
            "/openapi.json": {"get": {"summary": "this document", "responses": {"200": {"description": "OpenAPI 3"}}}},
            "/kill-switch": {
                "get": {"summary": "the kill switch", "responses": {"200": _json(_ref("KillSwitchStatus"), "its state")}},
                "post": {"summary": "activate (stops every bot with kill_switch = true) or release it",
                         "security": [{"bearer": []}],
                         "requestBody": {"required": True, "content": {"application/json": {"schema": _ref("KillSwitchBody")}}},
                         "responses": {"200": _json(_ref("KillSwitchReply"), "the new state and the bots stopped"),
                                       "400": ERROR, **UNAUTHORIZED}}},
            "/bots/{bot}/start": _action("start"),
            "/bots/{bot}/stop": _action("stop"),
            "/bots/{bot}/restart": _action("restart"),
            "/reload": {"post": {"summary": "`supctl reload`", "security": [{"bearer": []}],
                                 "responses": {"200": _json(_ref("ReloadReply"), "what changed"), "422": ERROR,
                                               **UNAUTHORIZED}}},
        },
    }
