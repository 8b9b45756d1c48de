"""A bot that works for a while and then crashes, so supctl's backoff restarts can be watched."""

import random
import sys
import time

time.sleep(random.uniform(2, 8))
print("worker: something went wrong", file=sys.stderr)
sys.exit(1)
