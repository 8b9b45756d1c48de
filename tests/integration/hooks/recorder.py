"""An event hook for tests: appends every ProcessEvent as one JSON line to `path`."""

import msgspec

from supervisor.plugin import EventHook, ProcessEvent


class RecorderOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    path: str


class Recorder(EventHook):
    name = "recorder"
    Options = RecorderOptions

    async def on_event(self, event: ProcessEvent) -> None:
        with open(self.options.path, "ab") as f:
            f.write(msgspec.json.encode(event) + b"\n")
