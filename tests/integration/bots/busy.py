"""Works a little and talks a little: some CPU and a log line now and then, for the dashboard's sparklines."""
import time

n = 0
while True:
    n += 1
    end = time.monotonic() + 0.02
    while time.monotonic() < end:
        pass
    if n % 20 == 0:
        print(f"tick {n}", flush=True)
    time.sleep(0.1)
