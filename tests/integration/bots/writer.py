"""Writes a known text: argv `lines N SIZE` (N numbered stdout lines of SIZE bytes), then
`stderr N` lines on stderr, then `partial TEXT` (no newline), then exits 0."""
import os
import sys

args = sys.argv[1:]
while args:
    kind = args.pop(0)
    if kind == "lines":
        n, size = int(args.pop(0)), int(args.pop(0))
        for i in range(n):
            head = f"line {i:06d} "
            os.write(1, (head + "x" * (size - len(head) - 1) + "\n").encode())
    elif kind == "stderr":
        for i in range(int(args.pop(0))):
            os.write(2, f"err {i}\n".encode())
    elif kind == "partial":
        os.write(1, args.pop(0).encode())
sys.exit(0)
