"""Ignores SIGTERM and forks a grandchild that ignores it too; prints both pids, then waits forever."""
import os
import signal
import time

signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = os.fork()
if child == 0:
    while True:
        time.sleep(3600)
print(f"child={os.getpid()} grandchild={child}", flush=True)
while True:
    time.sleep(3600)
