"""Listens on 127.0.0.1:PORT only after DELAY seconds, like a service that takes a while to warm up."""
import socket
import sys
import time

port, delay = int(sys.argv[1]), float(sys.argv[2])
time.sleep(delay)
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", port))
srv.listen()
print("listening", flush=True)
while True:
    conn, _ = srv.accept()
    conn.close()
