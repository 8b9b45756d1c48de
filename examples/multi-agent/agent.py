"""An autonomous agent (argv: its role). It works task after task, one step every STEP_EVERY seconds, each step
needing a capability (PLAN), and checkpoints after every step: killed mid-task, it resumes from its last checkpoint
after its own crash, a master restart or a reboot (`restored ...`).

It serves a capability only down to the fleet degradation level that capability allows (CAPABILITIES): the master
publishes the level on `supctl.fleet.degradation` from the share of healthy agents, and at `reduced` no agent does web
research, at `minimal` only core work, at `emergency` nothing but checkpoints.

A fault published on `agents.fault.<role>` ({"error": "..."}; retained, it outlasts restarts; null clears it) makes
every step fail with an `error:` line, which the procfile's log_pattern check counts."""
from __future__ import annotations

import asyncio
import json
import os
import sys

from supervisor.bus import Client, connect

LEVELS = ("normal", "reduced", "minimal", "emergency")
CAPABILITIES = {"web_research": "normal", "drafting": "reduced", "core": "minimal"}
"""Each capability and the deepest level at which it is still served."""
PLAN = ("web_research", "drafting", "core", "drafting", "core")
"""The capability each step of a task needs."""


class Agent:
    def __init__(self, role: str) -> None:
        self.role = role
        self.level = "normal"
        self.told = False
        self.fault: str | None = None

    def serves(self, capability: str) -> bool:
        return LEVELS.index(self.level) <= LEVELS.index(CAPABILITIES[capability])

    def set_level(self, level: dict) -> None:
        if self.told and level["level"] == self.level:
            return
        self.level, self.told = level["level"], True
        serving = [c for c in CAPABILITIES if self.serves(c)]
        refusing = [c for c in CAPABILITIES if not self.serves(c)]
        counted = f"{level['healthy']} of {level['total']} agents healthy" if level["total"] else "no agent counted yet"
        print(f"level {self.level} ({counted}): serving "
              f"{', '.join(serving) or 'nothing'}; refusing {', '.join(refusing) or 'nothing'}", flush=True)

    async def watch_level(self, bus: Client) -> None:
        sub = bus.subscribe("supctl.fleet.degradation")
        await sub.ready()
        now = await bus.degradation()  # the level now; the topic has a retained value only after the first change
        self.set_level({"level": now.level, "healthy": now.healthy, "total": now.total})
        async for msg in sub:
            self.set_level(msg.data)

    async def watch_faults(self, bus: Client) -> None:
        async for msg in bus.subscribe(f"agents.fault.{self.role}"):
            self.fault = msg.data.get("error") if isinstance(msg.data, dict) else None
            print(f"fault: {self.fault}" if self.fault else "fault cleared", flush=True)

    async def work(self, bus: Client, every: float) -> None:
        state = await bus.restore()
        if state is None:
            state = {"task": 1, "step": 0, "refused": 0}
            print("starting fresh at task 1 step 0", flush=True)
        else:
            print(f"restored task {state['task']} step {state['step']} from its checkpoint", flush=True)
        failed = 0
        while True:
            await asyncio.sleep(every)
            need = PLAN[state["step"]]
            if self.fault:
                failed += 1
                print(f"error: {need} call {failed} failed: {self.fault}", flush=True)
                continue
            if self.serves(need):
                did = f"used {need}"
            else:
                state["refused"] += 1
                did = f"refused {need} at level {self.level}"
            state["step"] += 1
            if state["step"] == len(PLAN):
                state = {"task": state["task"] + 1, "step": 0, "refused": state["refused"]}
            await bus.checkpoint(state)
            print(f"checkpoint task {state['task']} step {state['step']} ({did})", json.dumps(state), flush=True)


async def main(role: str) -> None:
    bus = await connect()
    agent = Agent(role)
    every = float(os.environ.get("STEP_EVERY", "2"))
    await asyncio.gather(agent.watch_level(bus), agent.watch_faults(bus), agent.work(bus, every))


asyncio.run(main(sys.argv[1]))
