"""A real nats-server with JetStream for the fleet tests: free port, own store dir, killed at teardown.

Readiness is the server's own "Server is ready" line, read from its stderr by a drain thread
(which also keeps the pipe from filling); `stop()` + `start()` keeps port and store for outage tests.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
from pathlib import Path

import pytest
from harness import free_port

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"
needs_nats = pytest.mark.skipif(not os.access(NATS_SERVER, os.X_OK), reason="needs nats-server (.ci/run installs it)")


class NatsServer:
    def __init__(self, root: Path, conf: str = "", listen: str = "127.0.0.1", netns: str | None = None) -> None:
        self.root = root
        self.port = free_port()
        self.listen = listen
        self.netns = netns
        self.store = root / "js"
        self.conf = root / "nats.conf"
        self.conf.write_text(conf)
        self.proc: subprocess.Popen[bytes] | None = None
        self.log: list[str] = []

    @property
    def url(self) -> str:
        return f"nats://{self.listen}:{self.port}"

    def start(self, timeout: float = 20.0) -> NatsServer:
        argv = [NATS_SERVER, "-c", str(self.conf), "-js", "-a", self.listen, "-p", str(self.port), "-sd", str(self.store)]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns, *argv]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, start_new_session=True)
        ready = threading.Event()
        threading.Thread(target=self._drain, args=(self.proc, ready), daemon=True).start()
        if not ready.wait(timeout) or self.proc.poll() is not None:
            self.stop()
            raise RuntimeError("nats-server did not start:\n" + "\n".join(self.log[-20:]))
        return self

    def _drain(self, proc: subprocess.Popen[bytes], ready: threading.Event) -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            self.log.append(line)
            if "Server is ready" in line:
                ready.set()
        ready.set()

    def stop(self) -> None:
        """SIGKILL, like a crash: nothing is flushed on the way out."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


class Hosts:
    """Two "hosts" joined only through a third namespace running nats-server (when root may make namespaces).

    Each host namespace has one veth to the NATS namespace and nothing else (no forwarding there),
    so the masters share nothing on the network but NATS. Without the privilege, everything runs on
    127.0.0.1 and `isolated` is False.
    """

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.names: list[str] = []
        self.isolated = False
        self.nats_ns: str | None = None
        self.prefix: dict[str, list[str]] = {"alpha": [], "beta": []}
        self.nats_addr: dict[str, str] = {"alpha": "127.0.0.1", "beta": "127.0.0.1"}
        self.addr: dict[str, str] = {}

    def setup(self) -> Hosts:
        if os.geteuid() != 0 or shutil.which("ip") is None:
            return self
        try:
            self.nats_ns = self._ns("n")
            for subnet, host in ((1, "alpha"), (2, "beta")):
                ns = self._ns(host[0])
                near, far = f"{self.tag}{host[0]}0", f"{self.tag}{host[0]}1"
                _ip("link", "add", near, "type", "veth", "peer", "name", far)
                _ip("link", "set", near, "netns", ns)
                _ip("link", "set", far, "netns", self.nats_ns)
                _ip("-n", ns, "addr", "add", f"10.77.{subnet}.2/24", "dev", near)
                _ip("-n", self.nats_ns, "addr", "add", f"10.77.{subnet}.1/24", "dev", far)
                _ip("-n", ns, "link", "set", near, "up")
                _ip("-n", self.nats_ns, "link", "set", far, "up")
                self.prefix[host] = ["ip", "netns", "exec", ns]
                self.nats_addr[host] = f"10.77.{subnet}.1"
                self.addr[host] = f"10.77.{subnet}.2"
        except (subprocess.CalledProcessError, OSError):
            self.teardown()
            self.prefix = {"alpha": [], "beta": []}
            self.nats_addr = {"alpha": "127.0.0.1", "beta": "127.0.0.1"}
            self.nats_ns = None
            return self
        self.isolated = True
        return self

    def _ns(self, suffix: str) -> str:
        name = f"{self.tag}{suffix}"
        _ip("netns", "add", name)
        self.names.append(name)
        _ip("-n", name, "link", "set", "lo", "up")
        return name

    def teardown(self) -> None:
        for name in self.names:
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)
        self.names.clear()
