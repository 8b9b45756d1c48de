"""Writes TOTAL bytes to stdout as fast as it can: blocks of 4 KiB lines whose first line numbers the block.

argv: TOTAL_BYTES [BLOCK_BYTES]. `expected(total, block)` yields the same stream for checking.
"""
import os
import sys

LINE = 4096


def body(block: int) -> bytes:
    lines = block // LINE
    first = b"." * (LINE - 9 - 1) + b"\n"          # after an 8-digit counter and a space
    rest = (b"y" * (LINE - 1) + b"\n") * (lines - 1)
    return first + rest


def expected(total: int, block: int = 65536):
    tail = body(block)
    for i in range(total // block):
        yield b"%08d " % i + tail


def main() -> None:
    total = int(sys.argv[1])
    block = int(sys.argv[2]) if len(sys.argv) > 2 else 65536
    for chunk in expected(total, block):
        view = memoryview(chunk)
        while view:
            view = view[os.write(1, view):]


if __name__ == "__main__":
    main()
