"""Prints who it is, then sleeps until signalled. argv: [seconds] (default forever) [exit code]."""
import os
import sys
import time

print(f"bot={os.environ.get('SUPCTL_BOT')} instance={os.environ.get('SUPCTL_INSTANCE')} pid={os.getpid()} "
      f"unbuffered={os.environ.get('PYTHONUNBUFFERED')}", flush=True)
if len(sys.argv) > 1:
    time.sleep(float(sys.argv[1]))
    sys.exit(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
while True:
    time.sleep(3600)
