"""A master with [http] on a free port: its base URL and token, found from its log and state_dir."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

from harness import Master

HTTP = '''
[http]
listen = "127.0.0.1:0"
'''


def base_url(m: Master, nth: int = 1) -> str:
    """The address of the nth master that ran on this state_dir (its log keeps the earlier ones' lines)."""
    port = m.wait_line(r"http: listening on 127\.0\.0\.1:(\d+)", count=nth)[nth - 1].group(1)
    return f"http://127.0.0.1:{port}"


def token(m: Master) -> str:
    return (m.state_dir / "http.token").read_text().strip()


def auth(m: Master) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(m)}"}


def sse_events(lines: Iterator[str], wanted: Callable[[str, dict], bool]) -> dict:
    """Read an SSE stream until an event's data satisfies `wanted`."""
    kind = None
    for line in lines:
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: ") and kind is not None:
            data = json.loads(line[6:])
            if wanted(kind, data):
                return data
    raise AssertionError("stream ended")
