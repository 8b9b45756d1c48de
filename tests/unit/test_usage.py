"""control.usage reads each instance's whole tree from /proc: real processes, compared with psutil's view."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil
import pytest

from supervisor.control import usage
from supervisor.control.usage import Usage

TREE = """import subprocess, threading, time
def spawn():  # from a second thread, which stays: the kid is that thread's child, not the main thread's
    print(subprocess.Popen(["sleep", "60"]).pid, flush=True)
    time.sleep(60)
threading.Thread(target=spawn, daemon=True).start()
while True:
    pass
"""


@pytest.fixture
def tree():
    parent = subprocess.Popen([sys.executable, "-c", TREE], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    kid = int(parent.stdout.readline())
    yield parent.pid, kid
    parent.kill()
    parent.wait()
    psutil.Process(kid).kill()


@pytest.mark.parametrize("children_files", [True, False], ids=["children-files", "proc-scan"])
def test_a_tree_sums_its_processes_and_a_busy_one_shows_cpu(tree, monkeypatch, children_files):
    """Both ways of finding descendants: the children files, and the /proc scan for kernels without them."""
    monkeypatch.setattr(usage, "HAS_CHILDREN", usage.HAS_CHILDREN and children_files)
    leader, kid = tree
    sampler = Usage(min_interval=0.0)
    first = sampler.sample([leader])
    assert first[leader][0] == 0.0  # nothing to compare with yet
    deadline = time.monotonic() + 20
    cpu = 0.0
    while cpu <= 0.0 and time.monotonic() < deadline:
        time.sleep(0.2)
        cpu, rss = sampler.sample([leader])[leader]
    assert cpu > 0.0
    both = psutil.Process(leader).memory_info().rss + psutil.Process(kid).memory_info().rss
    assert abs(rss - both) < both * 0.2  # the leader's and the grandchild's, as psutil sees them
    assert rss > psutil.Process(leader).memory_info().rss


def test_vanished_pids_are_left_out_and_samples_closer_than_the_interval_are_shared(tree):
    leader, _ = tree
    gone = subprocess.Popen(["true"])
    gone.wait()
    usage = Usage()
    first = usage.sample([leader, gone.pid])
    assert list(first) == [leader]
    assert usage.sample([leader]) is first
