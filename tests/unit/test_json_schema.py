"""docs/json-schema.json is what the --json Structs generate: renaming or dropping a field fails here first."""

from __future__ import annotations

import json
from pathlib import Path

from supervisor.control.views import schema

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "json-schema.json"


def test_committed_schema_matches_the_structs() -> None:
    assert json.loads(COMMITTED.read_text()) == json.loads(json.dumps(schema())), \
        "the --json output changed: regenerate with `python -m supervisor.control.views > docs/json-schema.json` " \
        "and say so in docs/json.md"


def test_no_wire_tag_in_any_output_schema() -> None:
    text = COMMITTED.read_text()
    assert '"op"' not in text
