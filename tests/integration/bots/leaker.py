"""Grows its memory by 5 MB every 50 ms, like a bot with a leak."""
import time

hoard = []
while True:
    hoard.append(bytearray(5 * 1024 * 1024))
    time.sleep(0.05)
