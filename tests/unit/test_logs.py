"""Log files: line splitting with partial tails, the stderr tag, rotation with N backups, timestamps, tail."""

from __future__ import annotations

import re
from pathlib import Path

from supervisor.config.paths import log_name
from supervisor.output.rotating import (
    MAX_LINE,
    STDERR_TAG,
    LineSplitter,
    LogStream,
    RotatingLog,
    RotatingLogHandler,
    rotated,
    tail_lines,
)


def test_log_name():
    assert log_name("feed", 0, 1) == "feed.log"
    assert log_name("trader", 1, 2) == "trader-1.log"


def test_splitter_keeps_partial_line_until_newline(tmp_path: Path):
    log = RotatingLog(tmp_path / "a.log", 1 << 20, 2)
    s = LineSplitter(log)
    s.feed(b"hel")
    assert (tmp_path / "a.log").read_bytes() == b""
    s.feed(b"lo\nwor")
    assert (tmp_path / "a.log").read_bytes() == b"hello\n"
    s.feed(b"ld\n\n")
    s.feed(b"tail")
    s.close()
    assert (tmp_path / "a.log").read_bytes() == b"hello\nworld\n\ntail\n"
    s.close()  # twice is harmless
    assert (tmp_path / "a.log").read_bytes().endswith(b"tail\n")


def test_stdout_and_stderr_interleave_by_whole_lines(tmp_path: Path):
    log = RotatingLog(tmp_path / "a.log", 1 << 20, 2)
    out, err = LineSplitter(log), LineSplitter(log, STDERR_TAG)
    out.feed(b"out one\nout ")
    err.feed(b"err one\nerr two\ner")
    out.feed(b"two\n")
    err.feed(b"r three")
    err.close()
    out.close()
    assert (tmp_path / "a.log").read_bytes() == (
        b"out one\n[stderr] err one\n[stderr] err two\nout two\n[stderr] err three\n")


def test_overlong_line_written_in_pieces(tmp_path: Path):
    log = RotatingLog(tmp_path / "a.log", 1 << 30, 0)
    s = LineSplitter(log)
    s.feed(b"x" * (MAX_LINE + 10))
    data = (tmp_path / "a.log").read_bytes()
    assert data == b"x" * (MAX_LINE + 10) + b"\n"


def test_rotation_keeps_n_backups(tmp_path: Path):
    path = tmp_path / "a.log"
    log = RotatingLog(path, 110, 3)
    for i in range(20):
        log.write_lines(f"{i:02d}".encode() * 25 + b"\n")  # 51 bytes: two fit, the third starts a new file
    log.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.log", "a.log.1", "a.log.2", "a.log.3"]
    chunks = [rotated(path, n).read_bytes() for n in (3, 2, 1)] + [path.read_bytes()]
    lines = b"".join(chunks).splitlines()
    assert [int(ln[:2]) for ln in lines] == list(range(12, 20))
    assert all(len(c) == 102 for c in chunks)
    assert path.stat().st_mode & 0o777 == 0o600


def test_rotation_without_backups_truncates(tmp_path: Path):
    log = RotatingLog(tmp_path / "a.log", 10, 0)
    log.write_lines(b"0123456789\n")
    log.write_lines(b"new\n")
    log.close()
    assert [p.name for p in tmp_path.iterdir()] == ["a.log"]
    assert (tmp_path / "a.log").read_bytes() == b"new\n"


def test_reopen_appends_and_counts_existing_size(tmp_path: Path):
    (tmp_path / "a.log").write_bytes(b"x" * 80 + b"\n")
    log = RotatingLog(tmp_path / "a.log", 100, 1)
    log.write_lines(b"012345678\n")  # fits: 91 bytes
    log.write_lines(b"0123456789\n")  # would make 102: starts a new file
    log.close()
    assert (tmp_path / "a.log.1").read_bytes() == b"x" * 80 + b"\n012345678\n"
    assert (tmp_path / "a.log").read_bytes() == b"0123456789\n"


def test_a_big_write_is_cut_at_line_boundaries(tmp_path: Path):
    """One pipe read can hold many lines: files stay within max_size, except a single longer line alone in its file."""
    path = tmp_path / "a.log"
    log = RotatingLog(path, 100, 10)
    lines = [b"%02d" % i + b"." * 27 + b"\n" for i in range(7)]  # 30 bytes each
    lines[4] = b"04" + b"!" * 200 + b"\n"
    log.write_lines(b"".join(lines))
    log.close()
    files = [rotated(path, n).read_bytes() for n in (3, 2, 1)] + [path.read_bytes()]
    assert files == [b"".join(lines[:3]), lines[3], lines[4], b"".join(lines[5:])]


def test_timestamps_prefix_every_line(tmp_path: Path):
    log = RotatingLog(tmp_path / "a.log", 1 << 20, 1, timestamps=True)
    LineSplitter(log).feed(b"one\ntwo\n")
    LineSplitter(log, STDERR_TAG).feed(b"three\n")
    log.close()
    lines = (tmp_path / "a.log").read_text().splitlines()
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d "
    assert [re.sub(stamp, "", ln) for ln in lines] == ["one", "two", "[stderr] three"]
    assert all(re.match(stamp, ln) for ln in lines)


def test_tail_lines(tmp_path: Path):
    path = tmp_path / "a.log"
    path.write_bytes(b"".join(b"line %d\n" % i for i in range(10_000)))
    assert tail_lines(path, 3) == ["line 9997", "line 9998", "line 9999"]
    assert tail_lines(path, 3, block=7) == ["line 9997", "line 9998", "line 9999"]
    assert tail_lines(path, 0) == []
    assert len(tail_lines(path, 20_000)) == 10_000
    assert tail_lines(tmp_path / "missing.log", 5) == []
    path.write_bytes(b"a\nno newline")
    assert tail_lines(path, 1) == ["no newline"]


def test_master_stderr_stream_goes_through_the_rotation(tmp_path: Path):
    """A traceback printed to a daemon's sys.stderr is cut into whole lines and rotated like any record."""
    log = RotatingLog(tmp_path / "supervisor.log", 2048, 1)
    stream = LogStream(RotatingLogHandler(log), b"[stderr] ")
    for i in range(200):
        stream.write(f"Traceback line {i}\n  File x, line {i}")
        stream.write("\n")
    files = sorted(tmp_path.iterdir())
    assert [p.name for p in files] == ["supervisor.log", "supervisor.log.1"]
    assert all(p.stat().st_size <= 2048 for p in files)
    assert all(line.startswith("[stderr] ") for p in files for line in p.read_text().splitlines())


def test_timestamps_and_the_stderr_tag_prefix_every_line_of_every_chunk(tmp_path: Path) -> None:
    """Several lines a chunk, a line split across chunks, a last line without newline: each gets exactly one
    prefix (the chunk is rewritten in one copy and written behind its first prefix)."""
    log = RotatingLog(tmp_path / "x.log", 10**6, 2, timestamps=True)
    err, out = LineSplitter(log, STDERR_TAG), LineSplitter(log)
    err.feed(b"a\nbb\nc")
    err.feed(b"c\n")
    out.feed(b"out1\nout2\n")
    out.feed(b"tail")
    out.close()
    log.close()
    lines = (tmp_path / "x.log").read_text().splitlines()
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}[+-]\d\d:\d\d "
    assert [re.sub(stamp, "", line, count=1) for line in lines] == ["[stderr] a", "[stderr] bb", "[stderr] cc", "out1", "out2", "tail"]
    assert all(re.match(stamp, line) for line in lines), lines
