"""A cgroup box on its own: the child is moved in by the mover thread, and emptiness arrives as an epoll event."""

from __future__ import annotations

import asyncio
import subprocess

import pytest
from harness import cgroups_unusable

from supervisor.engine import cgroups


@pytest.mark.skipif(bool(cgroups_unusable()), reason=f"no usable cgroup v2 here: {cgroups_unusable()}")
def test_box_gets_its_child_and_hears_it_leave() -> None:
    async def main() -> None:
        tree = cgroups.CgroupTree.create("SUPCTL_FLEET=test")
        child = subprocess.Popen(["sleep", "60"])
        try:
            box = tree.box("bot@0")
            box.started(child.pid)
            assert box.members() == [child.pid]  # waits for the move
            assert box.populated()
            waiting = asyncio.ensure_future(box.wait_empty(30))
            await asyncio.sleep(0)  # let it look once and wait for the event
            assert not waiting.done()
            asyncio.get_running_loop().call_soon(child.kill)
            assert await waiting, "cgroup.events' change never woke wait_empty (30 s timeout)"
            assert box.members() == [] and not box.populated()
        finally:
            child.kill()
            child.wait()
            tree.close()

    asyncio.run(main())


@pytest.mark.skipif(bool(cgroups_unusable()), reason=f"no usable cgroup v2 here: {cgroups_unusable()}")
def test_a_key_asked_again_gets_the_same_box() -> None:
    """A reload that replaces a bot asks for its instances' boxes again: no second descriptor, the same cgroup."""
    async def main() -> None:
        tree = cgroups.CgroupTree.create("SUPCTL_FLEET=test")
        try:
            assert tree.box("bot@0") is tree.box("bot@0")
            assert tree.box("bot@1") is not tree.box("bot@0")
        finally:
            tree.close()

    asyncio.run(main())
