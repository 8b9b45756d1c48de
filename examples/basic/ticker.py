"""A bot that prints a tick every second, like a price feed would."""

import os
import time

n = 0
while True:
    print(f"{os.environ.get('SUPCTL_BOT')}:{os.environ.get('SUPCTL_INSTANCE')} tick {n}")
    n += 1
    time.sleep(1)
