"""Listens on 127.0.0.1:PORT while the file GATE exists, and stops listening when it goes: a boot the test controls."""
import os
import socket
import sys
import time

port, gate = int(sys.argv[1]), sys.argv[2]
srv: socket.socket | None = None
while True:
    if os.path.exists(gate) and srv is None:
        srv = socket.socket()
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("127.0.0.1", port))
        srv.listen()
        srv.settimeout(0.02)
        print("listening", flush=True)
    elif not os.path.exists(gate) and srv is not None:
        srv.close()
        srv = None
        print("closed", flush=True)
    if srv is None:
        time.sleep(0.02)
        continue
    try:
        conn, _ = srv.accept()
        conn.close()
    except TimeoutError:
        pass
